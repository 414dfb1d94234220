//! Signed Status List Tokens, cached per list number (see the status list endpoints).

use std::collections::HashMap;

use bytes::Bytes;
use http::HeaderValue;

use super::response;

/// Signed Status List Tokens, by list number.
pub(crate) struct StatusListCache {
    /// Held while a list is signed, so concurrent misses sign once.
    entries: tokio::sync::Mutex<HashMap<u64, CachedList>>,
    /// `public, max-age={ttl}`.
    cache_control: HeaderValue,
}

/// One signed list.
pub(crate) struct CachedList {
    /// The list's revision in the store when it was signed.
    pub(crate) revision: u64,
    pub(crate) signed_at: u64,
    pub(crate) token: Bytes,
}

impl StatusListCache {
    pub(crate) fn new(ttl: u64) -> StatusListCache {
        StatusListCache {
            entries: tokio::sync::Mutex::new(HashMap::new()),
            cache_control: response::public_cache_control(ttl),
        }
    }

    /// The signed lists, held while one is signed so concurrent misses sign once.
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, HashMap<u64, CachedList>> {
        self.entries.lock().await
    }

    /// `Cache-Control` of the lists and the aggregation.
    pub(crate) fn cache_control(&self) -> &HeaderValue {
        &self.cache_control
    }
}
