//! Which build this is: the crate version and the git commit recorded by
//! `build.rs`. Shown by `semsearch --version`, `/v1/stats`, the `Server`
//! header and the `semsearch_build_info` metric.

/// The crate version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit (12 hex digits), or `unknown` outside a checkout.
pub const GIT_SHA: &str = env!("SEMSEARCH_GIT_SHA");

/// `semsearch/<version>`, the `Server` header of every response.
pub const SERVER: &str = concat!("semsearch/", env!("CARGO_PKG_VERSION"));

/// `<version> (<sha>)`, for `--version`.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SEMSEARCH_GIT_SHA"), ")");
