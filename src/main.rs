//! Thin shim: everything, the command line included, lives in the library
//! (`semsearch::cli`), so tests and benches run the code production runs.

/// mimalloc rather than glibc's malloc: a search allocates many small,
/// short-lived buffers (body, query, results, context entry, hyper's and
/// axum's per-request parts), and glibc's allocator was 16-19% of the
/// server's CPU samples at 64 clients; with mimalloc a search cost ~11% less
/// CPU, and the process held 367 MB instead of 542 MB after a 100k load
/// (figures in docs/benchmarks.md). The library (tests, benches) keeps the
/// system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    semsearch::cli::run().await
}
