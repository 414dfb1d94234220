//! The token status list endpoints (draft-ietf-oauth-status-list): `GET
//! {issuer}/statuslists/{n}` serves the signed Status List Token of list `n`, and `GET
//! {issuer}/statuslists` the Status List Aggregation.
//!
//! A signed list is cached and served again while the list's revision in the store is
//! unchanged and the signature is younger than the `ttl`, so a flood of fetches costs
//! one small store read each and no RSA signature, while a revocation shows in the very
//! next fetch (also one served by another replica sharing the store).

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use super::errors::OAuthError;
use super::response::{self, HttpResponse};
use super::service::Inner;
use crate::status_list::{
    STATUS_LIST_MEDIA_TYPE, StatusList, StatusListTokenClaims, status_list_uri,
};
use crate::store::StoreError;

/// Signed Status List Tokens, by list number.
pub(crate) struct StatusListCache {
    /// Held while a list is signed, so concurrent misses sign once.
    entries: tokio::sync::Mutex<HashMap<u64, CachedList>>,
    /// `public, max-age={ttl}`.
    cache_control: HeaderValue,
}

struct CachedList {
    revision: u64,
    signed_at: u64,
    token: Bytes,
}

impl StatusListCache {
    pub(crate) fn new(ttl: u64) -> StatusListCache {
        StatusListCache {
            entries: tokio::sync::Mutex::new(HashMap::new()),
            cache_control: response::public_cache_control(ttl),
        }
    }
}

/// The list number of a request path below `{issuer}/statuslists/`: canonical decimal
/// digits (no sign, no leading zero), at least 1.
pub(crate) fn parse_list_number(rest: &str) -> Option<u64> {
    if rest.is_empty() || rest.starts_with('0') || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// `GET {issuer}/statuslists/{number}`.
pub(crate) async fn list(inner: &Inner, number: u64, now: u64) -> HttpResponse {
    let revision = match inner.store.status_list_revision(number).await {
        Ok(Some(revision)) => revision,
        Ok(None) => return response::not_found(),
        Err(error) => return store_failure(&error),
    };
    let ttl = inner.config.status_lists.ttl.as_secs();
    let cache = &inner.status_list_cache;
    let mut entries = cache.entries.lock().await;
    if let Some(cached) = entries.get(&number)
        && cached.revision == revision
        && now >= cached.signed_at
        && now - cached.signed_at < ttl
    {
        return token_response(cached.token.clone(), &cache.cache_control);
    }
    let stored = match inner.store.status_list(number).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return response::not_found(),
        Err(error) => return store_failure(&error),
    };
    let Ok(mut bits) = StatusList::new(stored.size) else {
        tracing::error!(list = number, "a stored status list has an invalid size");
        return server_error();
    };
    for index in &stored.revoked {
        bits.set(*index);
    }
    // Valid for as long as a token issued now (plus one ttl of lag): see
    // `StatusListPolicy`.
    let exp = now
        .saturating_add(inner.config.lifetimes.access.as_secs())
        .saturating_add(ttl);
    let Ok(claims) = StatusListTokenClaims::new(&inner.config.issuer, number, &bits, now, exp, ttl)
    else {
        tracing::error!(list = number, "a status list could not be compressed");
        return server_error();
    };
    let token = match inner.keys.sign_status_list(&claims, now) {
        Ok(token) => Bytes::from(token),
        Err(_) => return server_error(),
    };
    entries.insert(
        number,
        CachedList {
            revision: stored.revision,
            signed_at: now,
            token: token.clone(),
        },
    );
    token_response(token, &cache.cache_control)
}

#[derive(Serialize)]
struct Aggregation {
    status_lists: Vec<String>,
}

/// `GET {issuer}/statuslists`: the Status List Aggregation, every list's URI.
pub(crate) async fn aggregation(inner: &Inner) -> HttpResponse {
    let lists = match inner.store.status_lists().await {
        Ok(lists) => lists,
        Err(error) => return store_failure(&error),
    };
    let body = Aggregation {
        status_lists: lists
            .into_iter()
            .map(|number| status_list_uri(&inner.config.issuer, number))
            .collect(),
    };
    let Ok(json) = serde_json::to_vec(&body) else {
        return server_error();
    };
    response::public_json(
        Bytes::from(json),
        inner.status_list_cache.cache_control.clone(),
    )
}

fn token_response(token: Bytes, cache_control: &HeaderValue) -> HttpResponse {
    let mut response = response::with_body(StatusCode::OK, token);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(STATUS_LIST_MEDIA_TYPE),
    );
    headers.insert(CACHE_CONTROL, cache_control.clone());
    response
}

fn store_failure(error: &StoreError) -> HttpResponse {
    tracing::error!(%error, "provider store failed");
    server_error()
}

fn server_error() -> HttpResponse {
    response::oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        OAuthError::server_error(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_numbers_are_canonical_decimals() {
        assert_eq!(parse_list_number("1"), Some(1));
        assert_eq!(parse_list_number("42"), Some(42));
        for bad in [
            "",
            "0",
            "01",
            "+1",
            "-1",
            "1a",
            "1/",
            "99999999999999999999",
        ] {
            assert_eq!(parse_list_number(bad), None, "{bad}");
        }
    }
}
