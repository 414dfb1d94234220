//! The key set as verifications read it: published by the key driver (or the builder, for
//! a static set) into an `ArcSwap`, with deadlines in Unix seconds and the header segments
//! that resolved to a key.

use std::sync::{Arc, OnceLock};

use arc_swap::Guard;

use crate::jwk::{KeySet, VerifyingKey};
use crate::policy::Algorithm;

/// The key set as the hot path reads it. Deadlines are in wall-clock seconds so a
/// verification reads the clock once.
pub(crate) struct Published {
    pub(crate) key_set: Arc<KeySet>,
    pub(crate) generation: u64,
    /// A background refresh is due from this Unix time.
    pub(crate) refresh_at: u64,
    /// The keys must not be used from this Unix time.
    pub(crate) usable_until: u64,
    /// Header segments that resolved to a key and then carried a valid signature.
    pub(crate) accepted_headers: [OnceLock<AcceptedHeader>; ACCEPTED_HEADERS],
}

/// How many distinct header segments a key set remembers. An issuer signs all its tokens
/// with a handful of headers (one per key and `typ`); slots are filled once and never
/// evicted, so a flood of other headers cannot push these out.
pub(crate) const ACCEPTED_HEADERS: usize = 4;

/// Longest header segment worth remembering.
const MAX_ACCEPTED_HEADER_BYTES: usize = 512;

/// A header segment and what it resolved to under one key set and policy.
///
/// Header checks are a pure function of the segment's bytes (strict base64url has one
/// encoding per byte string), the policy and the key set, so equal bytes under the same
/// key set get the same answer without decoding and parsing the header again.
pub(crate) struct AcceptedHeader {
    encoded: Box<[u8]>,
    algorithm: Algorithm,
    key_index: usize,
}

impl Published {
    pub(crate) fn new(
        key_set: Arc<KeySet>,
        generation: u64,
        refresh_at: u64,
        usable_until: u64,
    ) -> Self {
        Published {
            key_set,
            generation,
            refresh_at,
            usable_until,
            accepted_headers: Default::default(),
        }
    }

    /// Converts the cache's monotonic deadlines at (`now`, `now_unix`).
    #[cfg(feature = "runtime")]
    pub(crate) fn from_loaded(
        loaded: &crate::jwks::Loaded,
        now: std::time::Instant,
        now_unix: u64,
    ) -> Self {
        let to_unix = |t: std::time::Instant| {
            now_unix.saturating_add(t.saturating_duration_since(now).as_secs())
        };
        Published::new(
            Arc::clone(&loaded.key_set),
            loaded.generation,
            to_unix(loaded.refresh_at),
            to_unix(loaded.usable_until),
        )
    }

    /// What a header segment accepted earlier resolved to: its algorithm and key.
    pub(crate) fn accepted_header(&self, encoded: &[u8]) -> Option<(Algorithm, &VerifyingKey)> {
        self.accepted_headers
            .iter()
            .map_while(OnceLock::get)
            .find(|accepted| *accepted.encoded == *encoded)
            .and_then(|accepted| {
                let key = self.key_set.key(accepted.key_index)?;
                Some((accepted.algorithm, key))
            })
    }

    /// Remembers a header segment whose token carried a valid signature, if a slot is free.
    pub(crate) fn remember_header(&self, encoded: &[u8], algorithm: Algorithm, key_index: usize) {
        if encoded.len() > MAX_ACCEPTED_HEADER_BYTES {
            return;
        }
        if let Some(slot) = self
            .accepted_headers
            .iter()
            .find(|slot| slot.get().is_none())
        {
            // Losing a race to another thread only leaves this header unremembered.
            let _ = slot.set(AcceptedHeader {
                encoded: encoded.into(),
                algorithm,
                key_index,
            });
        }
    }
}

/// The key set as one attempt sees it, and the Unix time it was read at. Holds an
/// `arc_swap` guard, not a cloned `Arc`, so the hot path touches no shared refcount.
pub(crate) struct KeysAt {
    pub(crate) now: u64,
    pub(crate) guard: Guard<Option<Arc<Published>>>,
}

impl KeysAt {
    /// The key set, unless it is past its maximum stale age.
    pub(crate) fn usable(&self) -> Option<&Published> {
        self.guard
            .as_deref()
            .filter(|keys| self.now < keys.usable_until)
    }
}
