//! The token status list endpoints (draft-ietf-oauth-status-list): `GET
//! {issuer}/statuslists/{n}` serves the signed Status List Token of list `n`, and `GET
//! {issuer}/statuslists` the Status List Aggregation.
//!
//! A signed list is cached and served again while the list's revision in the store is
//! unchanged and the signature is younger than the `ttl`, so a flood of fetches costs
//! one small store read each and no RSA signature, while a revocation shows in the very
//! next fetch (also one served by another replica sharing the store).

use bytes::Bytes;
use serde::Serialize;

use super::errors::{OAuthError, store_error};
use super::state::ProviderState;
use super::status_list_cache::CachedList;
use crate::status_list::{StatusList, StatusListTokenClaims, status_list_uri};

/// `GET {issuer}/statuslists/{number}`: the signed Status List Token, or `None` for a
/// list that does not exist.
pub(crate) async fn list(
    state: &ProviderState,
    number: u64,
    now: u64,
) -> Result<Option<Bytes>, OAuthError> {
    let store = state.store();
    let Some(revision) = store
        .status_list_revision(number)
        .await
        .map_err(|e| store_error(&e))?
    else {
        return Ok(None);
    };
    let ttl = state.config().status_lists.ttl.as_secs();
    let mut entries = state.status_list_cache().lock().await;
    if let Some(cached) = entries.get(&number)
        && cached.revision == revision
        && now >= cached.signed_at
        && now - cached.signed_at < ttl
    {
        return Ok(Some(cached.token.clone()));
    }
    let Some(stored) = store
        .status_list(number)
        .await
        .map_err(|e| store_error(&e))?
    else {
        return Ok(None);
    };
    let Ok(mut bits) = StatusList::new(stored.size) else {
        tracing::error!(list = number, "a stored status list has an invalid size");
        return Err(OAuthError::server_error());
    };
    for index in &stored.revoked {
        bits.set(*index);
    }
    // Valid for as long as a token issued now (plus one ttl of lag): see
    // `StatusListPolicy`.
    let config = state.config();
    let exp = now
        .saturating_add(config.lifetimes.access.as_secs())
        .saturating_add(ttl);
    let Ok(claims) = StatusListTokenClaims::new(&config.issuer, number, &bits, now, exp, ttl)
    else {
        tracing::error!(list = number, "a status list could not be compressed");
        return Err(OAuthError::server_error());
    };
    let token = Bytes::from(
        state
            .keys()
            .sign_status_list(&claims, now)
            .map_err(|_| OAuthError::server_error())?,
    );
    entries.insert(
        number,
        CachedList {
            revision: stored.revision,
            signed_at: now,
            token: token.clone(),
        },
    );
    Ok(Some(token))
}

/// The Status List Aggregation.
#[derive(Serialize)]
pub(crate) struct Aggregation {
    status_lists: Vec<String>,
}

/// `GET {issuer}/statuslists`: the Status List Aggregation, every list's URI.
pub(crate) async fn aggregation(state: &ProviderState) -> Result<Aggregation, OAuthError> {
    let lists = state
        .store()
        .status_lists()
        .await
        .map_err(|e| store_error(&e))?;
    Ok(Aggregation {
        status_lists: lists
            .into_iter()
            .map(|number| status_list_uri(&state.config().issuer, number))
            .collect(),
    })
}
