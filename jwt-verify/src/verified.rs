//! [`Verified`]: a token that passed every check, shared by the verified-token cache.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
#[cfg(feature = "status-list")]
use std::sync::OnceLock;

use crate::policy::Algorithm;

/// A verified token: its claims (by `Deref`) and what it was verified with.
pub struct Verified<C> {
    pub(crate) inner: Arc<VerifiedInner<C>>,
}

pub(crate) struct VerifiedInner<C> {
    pub(crate) claims: C,
    pub(crate) expires_at: u64,
    pub(crate) algorithm: Algorithm,
    /// A copy, not a shared `Arc`: cloning one refcount from every core would bounce its
    /// cache line between them on each verification.
    pub(crate) key_id: Option<Box<str>>,
    /// Where the token's status lives, looked up again on every verification (cache hits
    /// included) so a later revocation is seen.
    #[cfg(feature = "status-list")]
    pub(crate) status: Option<crate::status_claim::StatusRef>,
    /// The list `status` names, once found.
    #[cfg(feature = "status-list")]
    pub(crate) status_slot: OnceLock<Arc<crate::status_list::driver::ListSlot>>,
}

impl<C> Verified<C> {
    /// The claims.
    pub fn claims(&self) -> &C {
        &self.inner.claims
    }

    /// The token's `exp`, in Unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.inner.expires_at
    }

    /// The algorithm the signature was checked with.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }

    /// The `kid` of the key that verified the signature.
    pub fn key_id(&self) -> Option<&str> {
        self.inner.key_id.as_deref()
    }

    /// Whether the token's `status` was checked against a status list.
    pub(crate) fn status_checked(&self) -> bool {
        #[cfg(feature = "status-list")]
        {
            self.inner.status.is_some()
        }
        #[cfg(not(feature = "status-list"))]
        {
            false
        }
    }
}

impl<C> Deref for Verified<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.inner.claims
    }
}

impl<C> Clone for Verified<C> {
    fn clone(&self) -> Self {
        Verified {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for Verified<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("claims", &self.inner.claims)
            .field("expires_at", &self.inner.expires_at)
            .field("algorithm", &self.inner.algorithm)
            .field("key_id", &self.inner.key_id)
            .finish()
    }
}
