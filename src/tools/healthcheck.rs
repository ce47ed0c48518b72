//! `semsearch healthcheck`: GET /readyz on the local server, for the
//! container HEALTHCHECK (so the runtime image needs no curl).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use clap::Args;
use thiserror::Error;

/// Flags of `semsearch healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The address the server listens on; an unspecified IP (0.0.0.0, ::) is
    /// reached on loopback.
    #[arg(long, env = "SEMSEARCH_BIND", default_value = "0.0.0.0:8080")]
    pub bind: SocketAddr,
    /// Longest wait for the answer, in seconds.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// Why the server is not known to be ready.
#[derive(Debug, Error)]
pub enum HealthError {
    #[error("GET {url} failed")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("GET {url} answered {status}")]
    NotReady { url: String, status: u16 },
}

/// `semsearch healthcheck`: GET /readyz on the server listening on `bind`
/// (0.0.0.0 and :: are reached on loopback). For the container HEALTHCHECK,
/// so the runtime image needs no curl.
///
/// # Errors
/// [`HealthError::Unreachable`] or [`HealthError::NotReady`].
pub async fn healthcheck(bind: SocketAddr, timeout: Duration) -> Result<(), HealthError> {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}/readyz", SocketAddr::new(ip, bind.port()));
    let unreachable = |source| HealthError::Unreachable { url: url.clone(), source };
    let client = reqwest::Client::builder().timeout(timeout).build().map_err(unreachable)?;
    let res = client.get(&url).send().await.map_err(unreachable)?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(HealthError::NotReady { url, status: res.status().as_u16() })
    }
}
