//! Bearer API keys: who may call which route group.
//!
//! Three groups, chosen where the route is registered (see [`super::routes`]):
//! open (health, readiness, metrics, the spec and its page), search (needs a
//! search or admin key once `SEMSEARCH_API_KEYS` is set) and admin (needs an
//! admin key; without any admin key configured, open only on loopback).
//! Keys are compared in constant time and never logged: they stay [`Secret`]s.
//! This module owns the 401/403 decision and nothing else.

use std::sync::Arc;

use axum::{
    extract::Request,
    http::{header, HeaderMap},
    middleware::Next,
    response::{IntoResponse, Response},
    Extension,
};
use subtle::ConstantTimeEq;

use crate::problem::ApiError;
use crate::secret::Secret;

/// The keys configured for the two protected route groups. `Debug` shows
/// how many, never which.
#[derive(Clone, Default)]
pub struct AccessSettings {
    /// Empty: search routes are open.
    pub api_keys: Vec<Secret>,
    /// Empty: admin routes are open on a loopback bind only.
    pub admin_keys: Vec<Secret>,
}

impl AccessSettings {
    /// The given keys, trimmed (`k1, k2` means `k2`, not ` k2`: issue 16),
    /// blank entries dropped (a trailing comma in the list).
    pub fn new(api_keys: Vec<Secret>, admin_keys: Vec<Secret>) -> Self {
        let non_empty = |keys: Vec<Secret>| {
            keys.into_iter().map(|k| Secret::new(k.expose().trim())).filter(|k| !k.expose().is_empty()).collect()
        };
        Self { api_keys: non_empty(api_keys), admin_keys: non_empty(admin_keys) }
    }
}

impl std::fmt::Debug for AccessSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessSettings")
            .field("api_keys", &self.api_keys.len())
            .field("admin_keys", &self.admin_keys.len())
            .finish()
    }
}

/// The configured keys, installed as a request extension by the router.
#[derive(Debug, Clone, Default)]
pub struct AccessKeys {
    /// Empty: search routes are open.
    search: Vec<Secret>,
    /// Empty: admin routes are open only when `admin_on_loopback` holds.
    admin: Vec<Secret>,
    /// The server is bound to a loopback address, so only local processes
    /// can reach it: the one case where keyless admin is safe.
    admin_on_loopback: bool,
}

/// What a request's credentials entitle it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    None,
    Search,
    Admin,
}

impl AccessKeys {
    pub fn new(search: Vec<Secret>, admin: Vec<Secret>, admin_on_loopback: bool) -> Self {
        let keep = |keys: Vec<Secret>| keys.into_iter().filter(|k| !k.expose().is_empty()).collect();
        Self { search: keep(search), admin: keep(admin), admin_on_loopback }
    }

    fn grant(&self, headers: &HeaderMap) -> Grant {
        let Some(token) = bearer(headers) else { return Grant::None };
        // Every key is compared, so the time taken does not reveal which
        // list (or which position) matched.
        let is_admin = any_matches(&self.admin, token);
        let is_search = any_matches(&self.search, token);
        if is_admin {
            Grant::Admin
        } else if is_search {
            Grant::Search
        } else {
            Grant::None
        }
    }

    /// # Errors
    /// 401 `unauthorized` when search keys are configured and the request carries none of them.
    fn check_search(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.search.is_empty() || self.grant(headers) != Grant::None {
            return Ok(());
        }
        Err(ApiError::Unauthorized)
    }

    /// # Errors
    /// 403 `forbidden` when admin is disabled or the key is only a search
    /// key; 401 `unauthorized` without a valid key.
    fn check_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.admin.is_empty() {
            // Keyless admin only when no key at all is configured: an
            // operator who closed search did not mean to leave admin open.
            return if self.admin_on_loopback && self.search.is_empty() {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "admin routes are disabled: set SEMSEARCH_ADMIN_KEYS (or, with no API keys at all, bind semsearch to a loopback address)"
                        .into(),
                ))
            };
        }
        match self.grant(headers) {
            Grant::Admin => Ok(()),
            Grant::Search => Err(ApiError::Forbidden("this API key may search but not use admin routes".into())),
            Grant::None => Err(ApiError::Unauthorized),
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token).filter(|t| !t.is_empty())
}

fn any_matches(keys: &[Secret], token: &[u8]) -> bool {
    keys.iter().fold(false, |found, key| found | bool::from(key.expose().as_bytes().ct_eq(token)))
}

/// Route layer of the search group.
pub async fn require_search_key(Extension(keys): Extension<Arc<AccessKeys>>, req: Request, next: Next) -> Response {
    match keys.check_search(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Route layer of the admin group.
pub async fn require_admin_key(Extension(keys): Extension<Arc<AccessKeys>>, req: Request, next: Next) -> Response {
    match keys.check_admin(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).expect("ascii header"));
        h
    }

    fn keys(search: &[&str], admin: &[&str], loopback: bool) -> AccessKeys {
        let s = |v: &[&str]| v.iter().map(|k| k.parse().expect("infallible")).collect();
        AccessKeys::new(s(search), s(admin), loopback)
    }

    #[test]
    fn search_is_open_without_search_keys_and_closed_with_them() {
        assert!(keys(&[], &["adm"], false).check_search(&HeaderMap::new()).is_ok());
        let k = keys(&["s1", "s2"], &["adm"], false);
        assert!(matches!(k.check_search(&HeaderMap::new()), Err(ApiError::Unauthorized)));
        assert!(matches!(k.check_search(&with_auth("Bearer nope")), Err(ApiError::Unauthorized)));
        assert!(matches!(k.check_search(&with_auth("Basic s1")), Err(ApiError::Unauthorized)));
        assert!(k.check_search(&with_auth("Bearer s2")).is_ok());
        assert!(k.check_search(&with_auth("bearer adm")).is_ok(), "an admin key may search");
    }

    #[test]
    fn admin_needs_an_admin_key_or_loopback_without_keys() {
        assert!(keys(&[], &[], true).check_admin(&HeaderMap::new()).is_ok());
        assert!(matches!(keys(&[], &[], false).check_admin(&HeaderMap::new()), Err(ApiError::Forbidden(_))));
        let k = keys(&["s"], &["adm"], true);
        assert!(matches!(k.check_admin(&HeaderMap::new()), Err(ApiError::Unauthorized)));
        assert!(matches!(k.check_admin(&with_auth("Bearer s")), Err(ApiError::Forbidden(_))));
        assert!(matches!(k.check_admin(&with_auth("Bearer s ")), Err(ApiError::Unauthorized)));
        assert!(k.check_admin(&with_auth("Bearer adm")).is_ok());
    }

    #[test]
    fn empty_keys_are_ignored() {
        let k = keys(&[""], &[], false);
        assert!(k.check_search(&HeaderMap::new()).is_ok(), "SEMSEARCH_API_KEYS= (empty) leaves search open");
    }
}
