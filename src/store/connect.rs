//! Where Redis is: [`RedisTarget`], built from a URL or from the chatbot
//! deployment's separate variables, with TLS and an optional private CA.
//!
//! Owns turning addresses and credentials into a redis-rs `ConnectionInfo`
//! and a printable form that never carries credentials
//! ([`RedisTarget::display`]). It reads no flags or environment: the
//! configuration layer hands it a URL ([`RedisTarget::from_url`]) or
//! [`RedisParts`].

use std::{fmt, path::Path, path::PathBuf};

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use thiserror::Error;

use crate::secret::Secret;

/// Why a Redis target could not be formed.
#[derive(Debug, Error)]
pub enum TargetError {
    /// The URL did not parse. The URL itself is not echoed: it may hold a password.
    #[error(
        "REDIS_URL is not a valid redis://, rediss:// or unix:// URL (value not shown: it may contain a password)"
    )]
    BadRedisUrl,
    /// The CA file could not be read.
    #[error("REDIS_TLS_CA_FILE {path}: {source}")]
    RedisCaFile { path: PathBuf, source: std::io::Error },
    /// A CA file was given, but the connection is not TLS or the PEM is unusable.
    #[error("REDIS_TLS_CA_FILE needs a rediss:// URL (or REDIS_TLS=true) and a PEM certificate: {reason}")]
    RedisTls { reason: String },
    /// A seed node of REDIS_CLUSTER_NODES is not `host:port`.
    #[error("REDIS_CLUSTER_NODES: {node:?} is not host:port")]
    BadClusterNode { node: String },
    /// A cluster cannot be reached through a unix socket or use a database other than 0.
    #[error("REDIS_CLUSTER_NODES: {reason}")]
    ClusterUnsupported { reason: &'static str },
}

/// Redis reached by host and port, as the chatbot's `REDIS_HOST`,
/// `REDIS_PORT` and friends describe it.
#[derive(Debug, Clone, Default)]
pub struct RedisParts {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub db: i64,
    pub tls: bool,
}

/// Where Redis is, ready for redis-rs, plus a printable form without secrets.
#[derive(Clone)]
pub struct RedisTarget {
    pub info: ConnectionInfo,
    display: String,
    /// The private CA's PEM, kept so cluster nodes found later (which
    /// redis-rs connects to by the address the cluster announces) verify
    /// against it too.
    ca_pem: Option<Vec<u8>>,
}

/// A Redis Cluster reached through seed nodes: each seed, and every node the
/// cluster announces later, uses the credentials, TLS mode and CA of the
/// single-node target it was built from.
#[derive(Clone)]
pub struct ClusterTarget {
    /// The template: credentials, RESP version, TLS mode and CA.
    template: RedisTarget,
    seeds: Vec<(String, u16)>,
    display: String,
}

impl ClusterTarget {
    /// The cluster behind `nodes` (`host:port` each), reached with the
    /// credentials and TLS settings of `template`.
    ///
    /// # Errors
    /// [`TargetError::BadClusterNode`] for a node that is not `host:port`,
    /// [`TargetError::ClusterUnsupported`] for a unix socket or a database other than 0.
    pub fn new(nodes: &[String], template: RedisTarget) -> Result<Self, TargetError> {
        if matches!(template.info.addr(), ConnectionAddr::Unix(_)) {
            return Err(TargetError::ClusterUnsupported { reason: "a cluster is reached over TCP, not a unix socket" });
        }
        if template.info.redis_settings().db() != 0 {
            return Err(TargetError::ClusterUnsupported { reason: "a cluster has only database 0 (REDIS_DB)" });
        }
        let mut seeds = Vec::with_capacity(nodes.len());
        for node in nodes.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let bad = || TargetError::BadClusterNode { node: node.to_owned() };
            let (host, port) = node.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || port == 0 {
                return Err(bad());
            }
            seeds.push((host.to_owned(), port));
        }
        if seeds.is_empty() {
            return Err(TargetError::BadClusterNode { node: String::new() });
        }
        let scheme = if template.is_tls() { "rediss" } else { "redis" };
        let list: Vec<String> = seeds.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        let display = format!("cluster {scheme}://{}", list.join(","));
        Ok(Self { template, seeds, display })
    }

    /// `cluster redis://host:port,host:port`; never credentials.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The seed nodes' connection infos.
    pub fn seed_infos(&self) -> Vec<ConnectionInfo> {
        self.seeds.iter().map(|(h, p)| self.node_info(h, *p)).collect()
    }

    /// The private CA, if one was configured.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.template.ca_pem.as_deref()
    }

    /// A connection info for the node at `host:port`, with the cluster's
    /// credentials and TLS settings (for the change feed's per-node connections).
    pub fn node_info(&self, host: &str, port: u16) -> ConnectionInfo {
        let addr = if self.template.is_tls() {
            ConnectionAddr::TcpTls { host: host.to_owned(), port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(host.to_owned(), port)
        };
        let info = addr
            .into_connection_info()
            .expect("a TCP address always forms a connection info")
            .set_redis_settings(self.template.info.redis_settings().clone());
        match &self.template.ca_pem {
            // The PEM parsed once already (RedisTarget::with_ca_file); on the
            // impossible failure the node is reached with the compiled-in roots.
            Some(pem) => redis::Client::build_with_tls(
                info.clone(),
                redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) },
            )
            .map(|c| c.get_connection_info().clone())
            .unwrap_or(info),
            None => info,
        }
    }
}

impl fmt::Debug for ClusterTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterTarget").field("nodes", &self.display).finish_non_exhaustive()
    }
}

impl RedisTarget {
    /// `redis://host:port/db` or `unix:/path (db N)`; never credentials.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// From a `redis://`, `rediss://` or `unix://` URL.
    ///
    /// # Errors
    /// [`TargetError::BadRedisUrl`] when it does not parse.
    pub fn from_url(url: &Secret) -> Result<Self, TargetError> {
        let info = url.expose().into_connection_info().map_err(|_| TargetError::BadRedisUrl)?;
        Ok(Self::from_info(info))
    }

    /// From host, port and credentials.
    ///
    /// # Errors
    /// [`TargetError::BadRedisUrl`] when the address is unusable.
    pub fn from_parts(parts: &RedisParts) -> Result<Self, TargetError> {
        let mut redis = redis::RedisConnectionInfo::default().set_db(parts.db);
        if let Some(user) = &parts.username {
            redis = redis.set_username(user);
        }
        if let Some(pw) = &parts.password {
            redis = redis.set_password(pw.expose());
        }
        let addr = if parts.tls {
            ConnectionAddr::TcpTls { host: parts.host.clone(), port: parts.port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(parts.host.clone(), parts.port)
        };
        let info = addr.into_connection_info().map_err(|_| TargetError::BadRedisUrl)?.set_redis_settings(redis);
        Ok(Self::from_info(info))
    }

    /// The same target, trusting the CA in the PEM file at `path` instead of
    /// the compiled-in roots. redis-rs stores the parsed certificate in the
    /// connection info, so every client built from it (loader, watcher,
    /// context writer, query cache) verifies against the same CA.
    ///
    /// # Errors
    /// [`TargetError::RedisCaFile`] or [`TargetError::RedisTls`].
    pub fn with_ca_file(self, path: &Path) -> Result<Self, TargetError> {
        let pem = std::fs::read(path).map_err(|source| TargetError::RedisCaFile { path: path.to_owned(), source })?;
        let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) };
        let client = redis::Client::build_with_tls(self.info, certs)
            .map_err(|e| TargetError::RedisTls { reason: e.to_string() })?;
        Ok(Self { ca_pem: Some(pem), ..Self::from_info(client.get_connection_info().clone()) })
    }

    fn is_tls(&self) -> bool {
        matches!(self.info.addr(), ConnectionAddr::TcpTls { .. })
    }

    fn from_info(info: ConnectionInfo) -> Self {
        let db = info.redis_settings().db();
        let display = match info.addr() {
            ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{db}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{db}"),
            ConnectionAddr::Unix(path) => format!("unix:{} (db {db})", path.display()),
            _ => format!("redis (db {db})"),
        };
        Self { info, display, ca_pem: None }
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget").field("addr", &self.display).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_in_url_is_not_displayed() {
        let t = RedisTarget::from_url(&Secret::new("redis://user:hunter2@db.example:6380/3")).expect("valid url");
        assert_eq!(t.display(), "redis://db.example:6380/3");
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn parts_with_a_password_display_without_it() {
        let parts = RedisParts {
            host: "127.0.0.1".into(),
            port: 6379,
            password: Some(Secret::new("hunter2")),
            ..RedisParts::default()
        };
        let t = RedisTarget::from_parts(&parts).expect("valid");
        assert_eq!(t.display(), "redis://127.0.0.1:6379/0");
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn cluster_nodes_take_the_credentials_of_the_template_and_display_without_them() {
        let template = RedisTarget::from_url(&Secret::new("redis://app:hunter2@ignored:1")).expect("valid url");
        let nodes = vec!["10.0.0.1:7000".to_owned(), " 10.0.0.2:7001 ".to_owned()];

        let t = ClusterTarget::new(&nodes, template).expect("valid nodes");

        assert_eq!(t.display(), "cluster redis://10.0.0.1:7000,10.0.0.2:7001");
        assert!(!format!("{t:?}").contains("hunter2"));
        let seeds = t.seed_infos();
        assert_eq!(seeds.len(), 2);
        assert_eq!(seeds[1].addr(), &ConnectionAddr::Tcp("10.0.0.2".into(), 7001));
        assert_eq!(seeds[0].redis_settings().username(), Some("app"));
        assert_eq!(seeds[0].redis_settings().password(), Some("hunter2"));
    }

    #[test]
    fn cluster_nodes_that_are_not_host_and_port_are_refused() {
        let template = || RedisTarget::from_url(&Secret::new("redis://127.0.0.1:6379")).expect("valid url");
        for bad in [&["localhost"][..], &["h:0"], &["h:port"], &[":7000"], &[" "]] {
            let nodes: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(ClusterTarget::new(&nodes, template()).is_err(), "{bad:?} accepted");
        }
        let db3 = RedisTarget::from_url(&Secret::new("redis://127.0.0.1:6379/3")).expect("valid url");
        assert!(matches!(ClusterTarget::new(&["h:1".to_owned()], db3), Err(TargetError::ClusterUnsupported { .. })));
    }

    #[test]
    fn bad_url_error_does_not_echo_the_url() {
        let err = RedisTarget::from_url(&Secret::new("nonsense://:hunter2@x")).expect_err("bad url");
        assert!(!err.to_string().contains("hunter2"));
    }
}
