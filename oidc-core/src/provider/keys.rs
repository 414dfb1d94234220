//! The provider's signing keys: a [`KeyRing`] loaded from the store, advanced on schedule
//! (with a compare-and-swap on the stored version, so two replicas cannot both rotate),
//! and the verifier for our own access tokens, rebuilt whenever the published keys change.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use bytes::Bytes;
use jwks_verify::{Clock, Policy, TypPolicy, Verifier};

use super::config::ProviderConfig;
use super::errors::{OAuthError, ProviderError};
use crate::audit::{self, AuditEvent};
use crate::jwt::{self, AccessTokenClaims, IdTokenClaims};
use crate::keys::{KeyEvent, KeyGenerator, KeyRing, RotationPolicy, SigningKey};
use crate::status_list::{self, StatusClaim, StatusListTokenClaims};
use crate::store::ProviderStore;

/// How often loading retries when other replicas keep changing the keys.
const LOAD_ATTEMPTS: usize = 5;

/// One consistent view of the keys.
struct KeySnapshot {
    ring: KeyRing,
    version: u64,
    jwks: Bytes,
    verifier: Verifier,
}

/// The keys and what is derived from them.
pub(crate) struct KeyManager {
    current: RwLock<Arc<KeySnapshot>>,
    /// One maintenance run at a time in this process.
    rotation: tokio::sync::Mutex<()>,
    /// The key that signed at the last maintenance run (to audit activations).
    last_signer: Mutex<Option<String>>,
    policy: RotationPolicy,
    generator: Arc<dyn KeyGenerator + Send + Sync>,
    verifier_policy: Policy,
    /// The provider's clock, which the verifier of our own tokens reads too.
    clock: Arc<dyn Clock>,
}

/// What the health endpoint reports about the keys.
pub(crate) struct KeyStatus {
    pub(crate) signing_kid: Option<String>,
    pub(crate) published: usize,
    pub(crate) next_due: u64,
}

impl KeyManager {
    /// Loads the keys, generating the first one (or catching up a rotation that fell due
    /// while no replica ran) and saving it with a compare-and-swap.
    pub(crate) async fn load(
        store: &dyn ProviderStore,
        config: &ProviderConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<KeyManager, ProviderError> {
        let mut verifier_policy =
            Policy::new(config.issuer.as_str(), config.default_audience.as_str())
                .typ(TypPolicy::AccessToken);
        for resource in &config.resources {
            verifier_policy = verifier_policy.also_accept_audience(resource.as_str());
        }
        let policy = config.rotation;
        let generator = Arc::clone(&config.key_generator);
        for _ in 0..LOAD_ATTEMPTS {
            let stored = store.load_keys().await?;
            let mut version = stored.version;
            let mut ring = KeyRing::from_records(policy, stored.records)?;
            let now = clock.unix_time();
            if needs_advance(&ring, now) {
                let (advanced, events) = advance(ring, now, Arc::clone(&generator)).await?;
                if events.iter().any(KeyEvent::changes_records) {
                    let Some(saved) = store.save_keys(advanced.records(), version).await? else {
                        continue;
                    };
                    version = saved;
                    record_events(&events);
                    // The first key of an empty ring signs at once.
                    for event in &events {
                        if let KeyEvent::Activated { kid } = event {
                            audit::record(&AuditEvent::KeyRotated {
                                kid,
                                state: "activated",
                            });
                        }
                    }
                }
                ring = advanced;
            }
            let snapshot = snapshot(ring, version, &verifier_policy, &clock)?;
            let signer = snapshot.ring.signer(now).map(|k| k.kid().to_owned());
            return Ok(KeyManager {
                current: RwLock::new(Arc::new(snapshot)),
                rotation: tokio::sync::Mutex::new(()),
                last_signer: Mutex::new(signer),
                policy,
                generator,
                verifier_policy,
                clock,
            });
        }
        Err(ProviderError::KeysContended)
    }

    /// Picks up keys another replica saved, advances the ring when something is due, and
    /// records key events.
    pub(crate) async fn maintain(&self, store: &dyn ProviderStore) -> Result<(), ProviderError> {
        let _running = self.rotation.lock().await;
        let now = self.clock.unix_time();
        let stored = store.load_keys().await?;
        let current = self.snapshot();
        let mut changed = stored.version != current.version;
        if !changed && !needs_advance(&current.ring, now) {
            self.record_activation(now);
            return Ok(());
        }
        let mut version = stored.version;
        let mut ring = if changed {
            KeyRing::from_records(self.policy, stored.records)?
        } else {
            KeyRing::from_records(self.policy, current.ring.records())?
        };
        if needs_advance(&ring, now) {
            let (advanced, events) = advance(ring, now, Arc::clone(&self.generator)).await?;
            if events.iter().any(KeyEvent::changes_records) {
                if let Some(saved) = store.save_keys(advanced.records(), version).await? {
                    version = saved;
                    ring = advanced;
                    record_events(&events);
                } else {
                    // Another replica rotated first: use its keys.
                    let stored = store.load_keys().await?;
                    version = stored.version;
                    ring = KeyRing::from_records(self.policy, stored.records)?;
                }
                changed = true;
            } else {
                ring = advanced;
            }
        }
        if changed {
            let snapshot = snapshot(ring, version, &self.verifier_policy, &self.clock)?;
            *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        }
        self.record_activation(now);
        Ok(())
    }

    /// Signs an access token (with its `status` claim, if any) with the key that signs at
    /// `now`.
    pub(crate) fn sign_access_token(
        &self,
        claims: &AccessTokenClaims,
        status: Option<&StatusClaim>,
        now: u64,
    ) -> Result<String, OAuthError> {
        self.sign_with(now, "an access token", |key| {
            jwt::encode_access_token_with_status(key, claims, status)
        })
    }

    /// Signs an ID token with the key that signs at `now`.
    pub(crate) fn sign_id_token(
        &self,
        claims: &IdTokenClaims,
        now: u64,
    ) -> Result<String, OAuthError> {
        self.sign_with(now, "an id token", |key| jwt::encode_id_token(key, claims))
    }

    /// Signs a Status List Token with the key that signs at `now`.
    pub(crate) fn sign_status_list(
        &self,
        claims: &StatusListTokenClaims,
        now: u64,
    ) -> Result<String, OAuthError> {
        self.sign_with(now, "a status list token", |key| {
            status_list::encode_status_list_token(key, claims)
        })
    }

    /// Runs `sign` with the key that signs at `now`; a missing key or a signing failure is
    /// logged (naming `what`) and answered as `server_error`.
    fn sign_with<E: std::fmt::Display>(
        &self,
        now: u64,
        what: &str,
        sign: impl FnOnce(&SigningKey) -> Result<String, E>,
    ) -> Result<String, OAuthError> {
        let snapshot = self.snapshot();
        let Some(key) = snapshot.ring.signer(now) else {
            tracing::error!("no signing key is active");
            return Err(OAuthError::server_error());
        };
        sign(key).map_err(|error| {
            tracing::error!(%error, "could not sign {what}");
            OAuthError::server_error()
        })
    }

    /// The JWK Set document.
    pub(crate) fn jwks(&self) -> Bytes {
        self.snapshot().jwks.clone()
    }

    /// A verifier for our own access tokens (`typ: at+jwt`, our issuer, our audiences).
    pub(crate) fn verifier(&self) -> Verifier {
        self.snapshot().verifier.clone()
    }

    /// The `max-age` of the JWKS response.
    pub(crate) fn jwks_max_age(&self) -> u64 {
        self.policy.jwks_max_age().as_secs()
    }

    /// The earliest time maintenance has something to do.
    pub(crate) fn next_due(&self, now: u64) -> u64 {
        self.snapshot().ring.next_due(now)
    }

    pub(crate) fn status(&self, now: u64) -> KeyStatus {
        let snapshot = self.snapshot();
        KeyStatus {
            signing_kid: snapshot.ring.signer(now).map(|k| k.kid().to_owned()),
            published: snapshot.ring.public_keys().len(),
            next_due: snapshot.ring.next_due(now),
        }
    }

    fn snapshot(&self) -> Arc<KeySnapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Audits a change of the signing key since the last run.
    fn record_activation(&self, now: u64) {
        let signer = self.snapshot().ring.signer(now).map(|k| k.kid().to_owned());
        let mut last = self
            .last_signer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *last == signer {
            return;
        }
        if let Some(old) = last.as_deref() {
            audit::record(&AuditEvent::KeyRotated {
                kid: old,
                state: "retired",
            });
        }
        if let Some(new) = signer.as_deref() {
            audit::record(&AuditEvent::KeyRotated {
                kid: new,
                state: "activated",
            });
        }
        *last = signer;
    }
}

/// Whether the ring has work to do at `now`.
fn needs_advance(ring: &KeyRing, now: u64) -> bool {
    ring.signer(now).is_none() || ring.next_due(now) <= now
}

/// Runs [`KeyRing::advance`] (which may generate an RSA key) on the blocking pool.
async fn advance(
    mut ring: KeyRing,
    now: u64,
    generator: Arc<dyn KeyGenerator + Send + Sync>,
) -> Result<(KeyRing, Vec<KeyEvent>), ProviderError> {
    let task = tokio::task::spawn_blocking(move || {
        let events = ring.advance(now, generator.as_ref())?;
        Ok::<_, ProviderError>((ring, events))
    });
    task.await.map_err(|_| ProviderError::Runtime)?
}

/// Audits the events that changed the stored keys.
fn record_events(events: &[KeyEvent]) {
    for event in events {
        match event {
            KeyEvent::Generated { kid, .. } => audit::record(&AuditEvent::KeyRotated {
                kid,
                state: "generated",
            }),
            KeyEvent::Dropped { kid } => audit::record(&AuditEvent::KeyRotated {
                kid,
                state: "dropped",
            }),
            _ => {}
        }
    }
}

fn snapshot(
    ring: KeyRing,
    version: u64,
    policy: &Policy,
    clock: &Arc<dyn Clock>,
) -> Result<KeySnapshot, ProviderError> {
    let jwks = ring.jwks();
    let verifier = Verifier::builder(policy.clone())
        .static_jwks(&jwks)
        .clock(Arc::clone(clock))
        .token_cache_entries(0)
        .build()
        .map_err(|_| ProviderError::KeySet)?;
    Ok(KeySnapshot {
        ring,
        version,
        jwks: Bytes::from(jwks),
        verifier,
    })
}
