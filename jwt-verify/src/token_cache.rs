//! The verified-token cache: a bounded, lock-free, two-way set-associative table keyed by
//! the SHA-256 of the whole token.
//!
//! - The key is a collision-resistant hash of every byte of the token, never a subset of
//!   claims (the fast-jwt GHSA-rp9m-7r4c-75qg lesson).
//! - An entry is never served at or after the token's `exp`.
//! - Every entry records the key-set generation it was verified under; when the key set
//!   changes the whole cache is cleared, and stale generations never hit.
//! - Reads take no lock: each slot is an `ArcSwapOption`.

use std::any::Any;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use aws_lc_rs::digest;

/// The SHA-256 of a token.
pub(crate) type TokenHash = [u8; 32];

pub(crate) fn hash_token(token: &str) -> TokenHash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

pub(crate) type CachedValue = Arc<dyn Any + Send + Sync>;

struct Entry {
    hash: TokenHash,
    expires_at: u64,
    generation: u64,
    value: CachedValue,
}

pub(crate) struct TokenCache {
    slots: Box<[ArcSwapOption<Entry>]>,
    mask: usize,
}

impl TokenCache {
    /// A cache of at least `capacity` entries (rounded up to a power of two, minimum 2).
    pub(crate) fn new(capacity: usize) -> Self {
        let len = capacity.clamp(2, 1 << 24).next_power_of_two();
        TokenCache {
            slots: (0..len).map(|_| ArcSwapOption::empty()).collect(),
            mask: len - 1,
        }
    }

    fn set(&self, hash: &TokenHash) -> [usize; 2] {
        let mut index = [0u8; size_of::<usize>()];
        index.copy_from_slice(&hash[..size_of::<usize>()]);
        let first = usize::from_le_bytes(index) & self.mask & !1;
        [first, first + 1]
    }

    /// The cached value for `hash`, if it was verified under `generation` and `now` is
    /// before its expiry.
    pub(crate) fn get(&self, hash: &TokenHash, generation: u64, now: u64) -> Option<CachedValue> {
        for index in self.set(hash) {
            let guard = self.slots[index].load();
            if let Some(entry) = guard.as_ref()
                && entry.hash == *hash
            {
                return (entry.generation == generation && now < entry.expires_at)
                    .then(|| Arc::clone(&entry.value));
            }
        }
        None
    }

    pub(crate) fn insert(
        &self,
        hash: TokenHash,
        expires_at: u64,
        generation: u64,
        value: CachedValue,
        now: u64,
    ) {
        let [a, b] = self.set(&hash);
        let score = |index: usize| -> u64 {
            match self.slots[index].load().as_ref() {
                None => 0,
                Some(e) if e.hash == hash => 0,
                Some(e) if e.generation != generation || e.expires_at <= now => 1,
                Some(e) => 2 + e.expires_at,
            }
        };
        let target = if score(a) <= score(b) { a } else { b };
        self.slots[target].store(Some(Arc::new(Entry {
            hash,
            expires_at,
            generation,
            value,
        })));
    }

    /// Drops every entry.
    #[cfg(feature = "runtime")]
    pub(crate) fn clear(&self) {
        for slot in &self.slots {
            slot.store(None);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.load().is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(n: u32) -> CachedValue {
        Arc::new(n)
    }

    fn get_u32(cache: &TokenCache, hash: &TokenHash, generation: u64, now: u64) -> Option<u32> {
        cache
            .get(hash, generation, now)
            .and_then(|v| v.downcast_ref::<u32>().copied())
    }

    #[test]
    fn hit_until_expiry() {
        let cache = TokenCache::new(16);
        let h = hash_token("a.b.c");
        cache.insert(h, 100, 1, value(7), 50);
        assert_eq!(get_u32(&cache, &h, 1, 99), Some(7));
        assert_eq!(get_u32(&cache, &h, 1, 100), None, "never at or after exp");
        assert_eq!(get_u32(&cache, &h, 2, 50), None, "other key-set generation");
    }

    #[test]
    fn distinct_tokens_never_collide() {
        let cache = TokenCache::new(1024);
        let h1 = hash_token("a.b.c");
        let h2 = hash_token("a.b.d");
        cache.insert(h1, 100, 1, value(1), 0);
        assert_eq!(get_u32(&cache, &h2, 1, 0), None);
    }

    #[test]
    fn bounded_in_size() {
        let cache = TokenCache::new(64);
        for i in 0..10_000 {
            cache.insert(hash_token(&format!("t{i}")), 1_000, 1, value(i), 0);
        }
        assert!(cache.len() <= 64);
    }

    #[cfg(feature = "runtime")]
    #[test]
    fn clear_drops_everything() {
        let cache = TokenCache::new(8);
        let h = hash_token("x");
        cache.insert(h, 100, 1, value(1), 0);
        cache.clear();
        assert_eq!(get_u32(&cache, &h, 1, 0), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn expired_entries_are_replaced_first() {
        let cache = TokenCache::new(2);
        let (h1, h2, h3) = (hash_token("1"), hash_token("2"), hash_token("3"));
        cache.insert(h1, 10, 1, value(1), 0);
        cache.insert(h2, 1_000, 1, value(2), 0);
        cache.insert(h3, 1_000, 1, value(3), 20);
        assert_eq!(get_u32(&cache, &h2, 1, 20), Some(2));
        assert_eq!(get_u32(&cache, &h3, 1, 20), Some(3));
    }
}
