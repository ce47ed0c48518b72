//! What every target shares: how a broken invariant is reported.
//!
//! Each invariant has a name. A broken one panics (libFuzzer saves the input
//! as a crash) unless its name is listed in `FUZZ_ALLOW` (comma-separated):
//! the way to keep fuzzing past a finding that is written up and waiting for
//! its fix, without deleting the check. docs/hardening.md lists the names.

use std::sync::OnceLock;

fn allowed() -> &'static [String] {
    static ALLOWED: OnceLock<Vec<String>> = OnceLock::new();
    ALLOWED.get_or_init(|| {
        std::env::var("FUZZ_ALLOW")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// Fails the run with `name` and `detail` unless `holds`, or unless `name`
/// is in `FUZZ_ALLOW`. `detail` is built only on failure.
#[track_caller]
pub fn check(holds: bool, name: &str, detail: impl FnOnce() -> String) {
    if !holds && !allowed().iter().any(|a| a == name) {
        panic!("invariant `{name}` broken: {}", detail());
    }
}
