//! The key ring: signing keys rotated on a schedule that is a pure function of the stored
//! records and the `now` passed in.

use std::fmt;
use std::time::Duration;

use super::{KeyError, KeySize, Pkcs8Secret, PublicJwk, SigningKey};

/// The longest lifetime of a token signed by the ring that [`RotationPolicy::default`]
/// assumes: one hour.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

const DAY: u64 = 24 * 3600;

/// When keys are generated, start signing, stop signing and disappear.
///
/// Each key signs for `rotate_every`. Its successor is generated and published
/// `publish_ahead` before it takes over, which must be longer than `jwks_max_age` (the
/// `Cache-Control: max-age` of the JWKS response) so that every verifier has refreshed
/// its cached key set before the first token signed with the new key reaches it. A key
/// that stopped signing stays published for `retain_after_retire`, which must cover the
/// longest token lifetime plus the JWKS cache time.
///
/// ```
/// use std::time::Duration;
/// use oidc_core::keys::RotationPolicy;
///
/// let policy = RotationPolicy::for_max_token_lifetime(Duration::from_secs(900))
///     .with_rotate_every(Duration::from_secs(7 * 24 * 3600));
/// assert!(policy.validate().is_ok());
/// assert_eq!(policy.retain_after_retire(), Duration::from_secs(900 + 600 + 3600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    rotate_every: u64,
    publish_ahead: u64,
    retain_after_retire: u64,
    jwks_max_age: u64,
}

impl RotationPolicy {
    /// Default signing period of a key: 30 days.
    pub const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(30 * DAY);
    /// Default lead time between publishing a key and signing with it: 1 day.
    pub const DEFAULT_PUBLISH_AHEAD: Duration = Duration::from_secs(DAY);
    /// Default `max-age` of the JWKS response: 10 minutes.
    pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(600);
    /// Safety margin added to token lifetime and JWKS cache time (clock skew, verifier
    /// leeway): 1 hour.
    pub const RETAIN_MARGIN: Duration = Duration::from_secs(3600);

    /// The default policy for tokens that live at most `max_token_lifetime`:
    /// `retain_after_retire` = `max_token_lifetime` + JWKS max-age + [`Self::RETAIN_MARGIN`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use oidc_core::keys::RotationPolicy;
    ///
    /// let policy = RotationPolicy::for_max_token_lifetime(Duration::from_secs(3600));
    /// assert_eq!(policy, RotationPolicy::default());
    /// ```
    pub fn for_max_token_lifetime(max_token_lifetime: Duration) -> RotationPolicy {
        let jwks_max_age = Self::DEFAULT_JWKS_MAX_AGE.as_secs();
        RotationPolicy {
            rotate_every: Self::DEFAULT_ROTATE_EVERY.as_secs(),
            publish_ahead: Self::DEFAULT_PUBLISH_AHEAD.as_secs(),
            retain_after_retire: max_token_lifetime
                .as_secs()
                .saturating_add(jwks_max_age)
                .saturating_add(Self::RETAIN_MARGIN.as_secs()),
            jwks_max_age,
        }
    }

    /// Sets how long each key signs.
    #[must_use]
    pub fn with_rotate_every(mut self, period: Duration) -> Self {
        self.rotate_every = period.as_secs();
        self
    }

    /// Sets how long before it signs a new key is published.
    #[must_use]
    pub fn with_publish_ahead(mut self, lead: Duration) -> Self {
        self.publish_ahead = lead.as_secs();
        self
    }

    /// Sets how long a key stays published after it stopped signing.
    #[must_use]
    pub fn with_retain_after_retire(mut self, retention: Duration) -> Self {
        self.retain_after_retire = retention.as_secs();
        self
    }

    /// Sets the `max-age` the JWKS response is served with.
    #[must_use]
    pub fn with_jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = max_age.as_secs();
        self
    }

    /// How long each key signs.
    pub fn rotate_every(&self) -> Duration {
        Duration::from_secs(self.rotate_every)
    }

    /// How long before it signs a new key is published.
    pub fn publish_ahead(&self) -> Duration {
        Duration::from_secs(self.publish_ahead)
    }

    /// How long a key stays published after it stopped signing.
    pub fn retain_after_retire(&self) -> Duration {
        Duration::from_secs(self.retain_after_retire)
    }

    /// The `max-age` to serve the JWKS with (`Cache-Control: public, max-age=…`).
    pub fn jwks_max_age(&self) -> Duration {
        Duration::from_secs(self.jwks_max_age)
    }

    /// Checks the constraints between the durations: `jwks_max_age < publish_ahead <
    /// rotate_every` and `retain_after_retire >= jwks_max_age`.
    pub fn validate(&self) -> Result<(), KeyRingError> {
        if self.publish_ahead <= self.jwks_max_age {
            return Err(KeyRingError::InvalidPolicy(
                "jwks max-age must be shorter than publish-ahead",
            ));
        }
        if self.rotate_every <= self.publish_ahead {
            return Err(KeyRingError::InvalidPolicy(
                "publish-ahead must be shorter than the rotation period",
            ));
        }
        if self.retain_after_retire < self.jwks_max_age {
            return Err(KeyRingError::InvalidPolicy(
                "retain-after-retire must be at least the jwks max-age",
            ));
        }
        Ok(())
    }
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy::for_max_token_lifetime(DEFAULT_MAX_TOKEN_LIFETIME)
    }
}

/// Where a key is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signing (and published).
    Current,
    /// No longer signing, still published.
    Retired,
}

/// Something [`KeyRing::advance`] did or observed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyEvent {
    /// A key was generated and published; it starts signing at `activates_at`. The
    /// records changed: persist them.
    Generated {
        /// The new key's id.
        kid: String,
        /// When it starts signing (Unix seconds).
        activates_at: u64,
    },
    /// A key started signing.
    Activated {
        /// The key's id.
        kid: String,
    },
    /// A key stopped signing; it stays published until `drop_after`.
    Retired {
        /// The key's id.
        kid: String,
        /// When it may be removed from the JWKS (Unix seconds).
        drop_after: u64,
    },
    /// A retired key was removed from the ring and the JWKS. The records changed: persist
    /// them.
    Dropped {
        /// The key's id.
        kid: String,
    },
}

impl KeyEvent {
    /// Whether this event changed the ring's records (so they must be persisted).
    pub fn changes_records(&self) -> bool {
        matches!(self, KeyEvent::Generated { .. } | KeyEvent::Dropped { .. })
    }
}

/// Makes new signing keys for [`KeyRing::advance`].
///
/// [`KeySize`] implements it with AWS-LC's RSA key generation. AWS-LC draws RSA key
/// material from its own DRBG and offers no way to inject a random source, so this trait
/// (rather than a `SecureRandom`) is the seam where tests supply pre-generated keys.
pub trait KeyGenerator {
    /// A new signing key.
    fn generate_key(&self) -> Result<SigningKey, KeyError>;
}

impl KeyGenerator for KeySize {
    fn generate_key(&self) -> Result<SigningKey, KeyError> {
        SigningKey::generate(*self)
    }
}

/// Why a key ring could not be built or advanced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// The rotation policy's durations contradict each other.
    #[error("invalid rotation policy: {0}")]
    InvalidPolicy(&'static str),
    /// A new key could not be generated.
    #[error("could not generate a signing key: {0}")]
    Generation(KeyError),
    /// A stored key could not be loaded.
    #[error("stored key {kid} could not be loaded: {source}")]
    UnreadableRecord {
        /// The record's `kid`.
        kid: String,
        /// Why.
        source: KeyError,
    },
    /// A stored key's `kid` is not the thumbprint of its key.
    #[error("stored key {kid} does not match its kid")]
    KidMismatch {
        /// The record's `kid`.
        kid: String,
    },
    /// A stored key's times are out of order (they must satisfy `created_at <=
    /// activates_at < retires_at <= drop_after`).
    #[error("stored key {kid} has inconsistent times")]
    InconsistentTimes {
        /// The record's `kid`.
        kid: String,
    },
    /// Two keys with the same `kid`.
    #[error("two keys with kid {kid}")]
    DuplicateKid {
        /// The repeated `kid`.
        kid: String,
    },
    /// Two stored keys start signing at the same second, so the signer is ambiguous.
    #[error("two stored keys activate at the same time")]
    SameActivation,
}

/// One key of a [`KeyRing`] as stored: its private key and its schedule.
///
/// `Debug` redacts the private key; the record is not `Clone`.
#[derive(Debug)]
#[non_exhaustive]
pub struct KeyRecord {
    /// The key id (RFC 7638 thumbprint); checked against the key when loaded.
    pub kid: String,
    /// The private key, PKCS#8 DER.
    pub pkcs8: Pkcs8Secret,
    /// When the key was generated and published (Unix seconds).
    pub created_at: u64,
    /// When it starts signing.
    pub activates_at: u64,
    /// When it stops signing (its successor's `activates_at` once there is one).
    pub retires_at: u64,
    /// When it may be removed from the JWKS.
    pub drop_after: u64,
}

impl KeyRecord {
    /// A record, e.g. read back from storage. Checked by [`KeyRing::from_records`].
    ///
    /// ```
    /// use oidc_core::keys::{KeyRecord, KeySize, SigningKey};
    ///
    /// let key = SigningKey::generate(KeySize::Rsa2048)?;
    /// let record = KeyRecord::new(key.kid().to_owned(), key.to_pkcs8_der()?, 0, 0, 10, 20);
    /// assert!(format!("{record:?}").contains("<redacted>"));
    /// # Ok::<(), oidc_core::keys::KeyError>(())
    /// ```
    pub fn new(
        kid: String,
        pkcs8: Pkcs8Secret,
        created_at: u64,
        activates_at: u64,
        retires_at: u64,
        drop_after: u64,
    ) -> KeyRecord {
        KeyRecord {
            kid,
            pkcs8,
            created_at,
            activates_at,
            retires_at,
            drop_after,
        }
    }
}

/// The signing keys of one issuer, rotated by [`advance`](KeyRing::advance).
///
/// Every state is a function of the records and `now`: the signer at `now` is the key
/// with the latest `activates_at <= now`; keys activating later are *next*; keys activated
/// earlier are *retired* and are dropped once `now >= drop_after`. `jwks()` publishes every
/// key in the ring. So instances that load the same records (with
/// [`from_records`](KeyRing::from_records)) sign with the same key and publish the same
/// JWKS at the same time.
///
/// `advance` generates keys, so run it on one instance at a time (under a storage lock or
/// a compare-and-swap on the records), persist [`records`](KeyRing::records) whenever an
/// event [changes them](KeyEvent::changes_records), and have the other instances reload.
/// Call it at least every [`next_due`](KeyRing::next_due) (every few minutes is fine).
///
/// ```
/// use oidc_core::keys::{KeyRing, KeySize, RotationPolicy};
///
/// let mut ring = KeyRing::new(RotationPolicy::default())?;
/// let now = 1_700_000_000;
/// let events = ring.advance(now, &KeySize::Rsa2048)?;
/// assert_eq!(events.len(), 2); // generated, activated
/// let signer = ring.signer(now).expect("a key signs after the first advance");
/// assert!(ring.jwks().contains(signer.kid()));
/// # Ok::<(), oidc_core::keys::KeyRingError>(())
/// ```
pub struct KeyRing {
    policy: RotationPolicy,
    /// Sorted by `activates_at`, strictly increasing.
    keys: Vec<Entry>,
    /// The latest `now` passed to `advance` on this instance.
    observed_at: Option<u64>,
}

struct Entry {
    key: SigningKey,
    pkcs8: Pkcs8Secret,
    created_at: u64,
    activates_at: u64,
    retires_at: u64,
    drop_after: u64,
}

impl KeyRing {
    /// An empty ring; the first [`advance`](KeyRing::advance) generates a key that signs at
    /// once.
    ///
    /// ```
    /// use oidc_core::keys::{KeyRing, RotationPolicy};
    ///
    /// let ring = KeyRing::new(RotationPolicy::default())?;
    /// assert!(ring.signer(0).is_none());
    /// assert_eq!(ring.jwks(), r#"{"keys":[]}"#);
    /// # Ok::<(), oidc_core::keys::KeyRingError>(())
    /// ```
    pub fn new(policy: RotationPolicy) -> Result<KeyRing, KeyRingError> {
        policy.validate()?;
        Ok(KeyRing {
            policy,
            keys: Vec::new(),
            observed_at: None,
        })
    }

    /// A ring from stored records. Each key is parsed and checked against its `kid`; the
    /// times of each record must be in order, and no two keys may share a `kid` or an
    /// activation time.
    ///
    /// ```
    /// use oidc_core::keys::{KeyRing, KeySize, RotationPolicy};
    ///
    /// let mut ring = KeyRing::new(RotationPolicy::default())?;
    /// ring.advance(1_700_000_000, &KeySize::Rsa2048)?;
    /// let restarted = KeyRing::from_records(RotationPolicy::default(), ring.records())?;
    /// assert_eq!(restarted.jwks(), ring.jwks());
    /// # Ok::<(), oidc_core::keys::KeyRingError>(())
    /// ```
    pub fn from_records(
        policy: RotationPolicy,
        records: impl IntoIterator<Item = KeyRecord>,
    ) -> Result<KeyRing, KeyRingError> {
        policy.validate()?;
        let mut keys = Vec::new();
        for record in records {
            let key = SigningKey::from_pkcs8_der(record.pkcs8.secret_der()).map_err(|source| {
                KeyRingError::UnreadableRecord {
                    kid: record.kid.clone(),
                    source,
                }
            })?;
            if key.kid() != record.kid {
                return Err(KeyRingError::KidMismatch { kid: record.kid });
            }
            if !(record.created_at <= record.activates_at
                && record.activates_at < record.retires_at
                && record.retires_at <= record.drop_after)
            {
                return Err(KeyRingError::InconsistentTimes { kid: record.kid });
            }
            if keys.iter().any(|e: &Entry| e.key.kid() == record.kid) {
                return Err(KeyRingError::DuplicateKid { kid: record.kid });
            }
            keys.push(Entry {
                key,
                pkcs8: record.pkcs8,
                created_at: record.created_at,
                activates_at: record.activates_at,
                retires_at: record.retires_at,
                drop_after: record.drop_after,
            });
        }
        keys.sort_by_key(|e| e.activates_at);
        if keys
            .windows(2)
            .any(|pair| pair[0].activates_at == pair[1].activates_at)
        {
            return Err(KeyRingError::SameActivation);
        }
        Ok(KeyRing {
            policy,
            keys,
            observed_at: None,
        })
    }

    /// The records to persist (private keys included, zeroed on drop).
    pub fn records(&self) -> Vec<KeyRecord> {
        self.keys
            .iter()
            .map(|e| KeyRecord {
                kid: e.key.kid().to_owned(),
                pkcs8: e.pkcs8.duplicate(),
                created_at: e.created_at,
                activates_at: e.activates_at,
                retires_at: e.retires_at,
                drop_after: e.drop_after,
            })
            .collect()
    }

    /// Moves the ring to `now`:
    ///
    /// 1. An empty ring gets a key that signs at once.
    /// 2. When the newest key signs and its retirement is within `publish_ahead`, a
    ///    successor is generated. It activates at the newest key's `retires_at`, or
    ///    `publish_ahead` after `now` if `advance` ran late; then the newest key signs
    ///    until that later time instead (never signing with a key published for less than
    ///    `publish_ahead`).
    /// 3. Activations (and the matching retirements) since the previous call on this
    ///    instance are reported.
    /// 4. Retired keys past `drop_after` (and past their successor's activation plus the
    ///    policy's `retain_after_retire`) are dropped.
    ///
    /// On error nothing changes.
    pub fn advance(
        &mut self,
        now: u64,
        generator: &dyn KeyGenerator,
    ) -> Result<Vec<KeyEvent>, KeyRingError> {
        let since = self.observed_at.unwrap_or(now);
        let mut events = Vec::new();
        let p = self.policy;

        if self.keys.is_empty() {
            let entry = self.new_entry(generator, now, now)?;
            let kid = entry.key.kid().to_owned();
            events.push(KeyEvent::Generated {
                kid: kid.clone(),
                activates_at: now,
            });
            events.push(KeyEvent::Activated { kid });
            self.keys.push(entry);
        } else if self.generation_due().is_some_and(|due| now >= due) {
            let newest_retires_at = self.keys.last().map_or(now, |e| e.retires_at);
            let activates_at = newest_retires_at.max(now.saturating_add(p.publish_ahead));
            let entry = self.new_entry(generator, now, activates_at)?;
            if let Some(newest) = self.keys.last_mut() {
                newest.retires_at = activates_at;
                newest.drop_after = activates_at.saturating_add(p.retain_after_retire);
            }
            events.push(KeyEvent::Generated {
                kid: entry.key.kid().to_owned(),
                activates_at,
            });
            self.keys.push(entry);
        }

        if now > since {
            for pair in self.keys.windows(2) {
                let activated = pair[1].activates_at;
                if since < activated && activated <= now {
                    events.push(KeyEvent::Retired {
                        kid: pair[0].key.kid().to_owned(),
                        drop_after: pair[0].drop_after,
                    });
                    events.push(KeyEvent::Activated {
                        kid: pair[1].key.kid().to_owned(),
                    });
                }
            }
        }

        let droppable: Vec<bool> = (0..self.keys.len())
            .map(|i| self.droppable_at(i).is_some_and(|at| now >= at))
            .collect();
        let mut index = 0;
        self.keys.retain(|entry| {
            let drop = droppable[index];
            index += 1;
            if drop {
                events.push(KeyEvent::Dropped {
                    kid: entry.key.kid().to_owned(),
                });
            }
            !drop
        });

        self.observed_at = Some(since.max(now));
        Ok(events)
    }

    /// The key that signs at `now`: the one with the latest activation time not after
    /// `now`. `None` before the first [`advance`](KeyRing::advance).
    pub fn signer(&self, now: u64) -> Option<&SigningKey> {
        self.signer_index(now).map(|i| &self.keys[i].key)
    }

    /// The JWK Set document (`{"keys":[…]}`) of every key in the ring, public members only,
    /// in activation order.
    pub fn jwks(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|e| e.key.public_jwk().to_json())
            .collect();
        format!(r#"{{"keys":[{}]}}"#, keys.join(","))
    }

    /// The public keys of the ring, in activation order.
    pub fn public_keys(&self) -> Vec<PublicJwk> {
        self.keys.iter().map(|e| e.key.public_jwk()).collect()
    }

    /// The state of the key `kid` at `now`, or `None` if the ring does not hold it.
    pub fn state(&self, kid: &str, now: u64) -> Option<KeyState> {
        let index = self.keys.iter().position(|e| e.key.kid() == kid)?;
        Some(match self.signer_index(now) {
            Some(signer) if signer == index => KeyState::Current,
            Some(signer) if index < signer => KeyState::Retired,
            _ => KeyState::Next,
        })
    }

    /// The earliest time at which [`advance`](KeyRing::advance) has something to do
    /// (generate, activate or drop a key). A value not after `now` means "now".
    pub fn next_due(&self, now: u64) -> u64 {
        let generation = self.generation_due();
        let activation = self
            .keys
            .iter()
            .map(|e| e.activates_at)
            .find(|&at| at > now);
        let drop = (0..self.keys.len())
            .filter_map(|i| self.droppable_at(i))
            .min();
        [generation, activation, drop]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now)
    }

    /// The rotation policy.
    pub fn policy(&self) -> &RotationPolicy {
        &self.policy
    }

    fn signer_index(&self, now: u64) -> Option<usize> {
        self.keys.iter().rposition(|e| e.activates_at <= now)
    }

    /// When a successor for the newest key is due: `publish_ahead` before it retires, and
    /// never before it activated (one pending key at a time).
    fn generation_due(&self) -> Option<u64> {
        let newest = self.keys.last()?;
        Some(
            newest
                .activates_at
                .max(newest.retires_at.saturating_sub(self.policy.publish_ahead)),
        )
    }

    /// When key `i` may be dropped: only once a later key has activated, after both its
    /// recorded `drop_after` and the current policy's retention past that activation.
    fn droppable_at(&self, i: usize) -> Option<u64> {
        let successor = self.keys.get(i + 1)?;
        Some(
            self.keys[i].drop_after.max(
                successor
                    .activates_at
                    .saturating_add(self.policy.retain_after_retire),
            ),
        )
    }

    fn new_entry(
        &self,
        generator: &dyn KeyGenerator,
        now: u64,
        activates_at: u64,
    ) -> Result<Entry, KeyRingError> {
        let key = generator.generate_key().map_err(KeyRingError::Generation)?;
        if self.keys.iter().any(|e| e.key.kid() == key.kid()) {
            return Err(KeyRingError::DuplicateKid {
                kid: key.kid().to_owned(),
            });
        }
        let pkcs8 = key.to_pkcs8_der().map_err(KeyRingError::Generation)?;
        let retires_at = activates_at.saturating_add(self.policy.rotate_every);
        Ok(Entry {
            key,
            pkcs8,
            created_at: now,
            activates_at,
            retires_at,
            drop_after: retires_at.saturating_add(self.policy.retain_after_retire),
        })
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Keys<'a>(&'a [Entry]);
        impl fmt::Debug for Keys<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|e| {
                        (
                            e.key.kid(),
                            e.created_at,
                            e.activates_at,
                            e.retires_at,
                            e.drop_after,
                        )
                    }))
                    .finish()
            }
        }
        f.debug_struct("KeyRing")
            .field("policy", &self.policy)
            .field(
                "keys (kid, created, activates, retires, drop)",
                &Keys(&self.keys),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests;
