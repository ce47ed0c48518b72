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

fn main() -> anyhow::Result<()> {
    keep_to_small_pages();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(semsearch::cli::run())
}

/// Turns transparent huge pages off for this process, as mimalloc's own
/// `MIMALLOC_ALLOW_THP=0` would, unless that variable is set (then mimalloc
/// applies it when it starts, either way).
///
/// Why (issue 24): mimalloc marks its OS memory `MADV_HUGEPAGE`, and on a
/// kernel whose THP mode is `madvise` (this box's, in
/// /sys/kernel/mm/transparent_hugepage/enabled) a first touch there may
/// compact memory before it clears 2 MiB. A load
/// first-touches its whole matrix, its int8 copy and its chunk buffers.
/// Measured on 200k raw-f32 documents (3 rounds, interleaved with the
/// previous build): full load 1.97× → 1.40× a bare SCAN + MGET, quick-key
/// reload 1.93× → 1.75×; at 1M no gain (13.5 s against 12.1–13.3 s, two
/// rounds), and exact search at 64 connections on 20k documents unchanged
/// (10,906 against 9,996 QPS). Figures in docs/benchmarks.md. The flag is
/// process-wide and only changes how later faults are served; set
/// `MIMALLOC_ALLOW_THP=1` to keep huge pages (very large indexes).
fn keep_to_small_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments
        // only and touches no memory of ours; failure (an old kernel) only
        // leaves THP as the kernel set it.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}
