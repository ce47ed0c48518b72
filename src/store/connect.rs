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
        let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
        let client = redis::Client::build_with_tls(self.info, certs)
            .map_err(|e| TargetError::RedisTls { reason: e.to_string() })?;
        Ok(Self::from_info(client.get_connection_info().clone()))
    }

    fn from_info(info: ConnectionInfo) -> Self {
        let db = info.redis_settings().db();
        let display = match info.addr() {
            ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{db}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{db}"),
            ConnectionAddr::Unix(path) => format!("unix:{} (db {db})", path.display()),
            _ => format!("redis (db {db})"),
        };
        Self { info, display }
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
    fn bad_url_error_does_not_echo_the_url() {
        let err = RedisTarget::from_url(&Secret::new("nonsense://:hunter2@x")).expect_err("bad url");
        assert!(!err.to_string().contains("hunter2"));
    }
}
