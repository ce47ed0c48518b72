//! Thin shim: everything, the command line included, lives in the library
//! (`semsearch::cli`), so tests and benches run the code production runs.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    semsearch::cli::run().await
}
