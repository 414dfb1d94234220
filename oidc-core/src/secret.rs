//! High-entropy bearer secrets: client secrets, authorization codes, refresh tokens, CSRF
//! tokens.
//!
//! A [`Secret`] is 32 random bytes (256 bits), base64url-encoded to 43 characters. It is
//! shown once (to the client, in a redirect or a response) and only its [`SecretHash`] is
//! stored. Because the secret is a uniformly random 256-bit value, a single SHA-256 is the
//! right hash: there is nothing to brute-force, so a slow password hash would only cost
//! CPU. Passwords are not handled here.
//!
//! ```
//! use aws_lc_rs::rand::SystemRandom;
//! use oidc_core::secret::{Secret, SecretHash};
//!
//! let code = Secret::generate(&SystemRandom::new())?;
//! let stored: String = code.to_hash().to_hex();          // persist this
//! // … later, when the code is presented:
//! let hash = SecretHash::from_hex(&stored)?;
//! assert!(hash.matches(code.expose_secret()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SecureRandom;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize as _, Zeroizing};

use crate::base64url;
use crate::error::RandomError;

/// Length of a generated secret in characters (32 bytes as unpadded base64url).
pub const SECRET_LEN: usize = 43;

/// A freshly generated high-entropy secret.
///
/// `Debug` is redacted, the memory is zeroed on drop, and it is not `Clone`: hand it out
/// once and keep only its [`SecretHash`].
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// 32 bytes from `rng`, as 43 base64url characters.
    ///
    /// ```
    /// use aws_lc_rs::rand::SystemRandom;
    /// use oidc_core::secret::Secret;
    ///
    /// let secret = Secret::generate(&SystemRandom::new())?;
    /// assert_eq!(secret.expose_secret().len(), 43);
    /// assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    /// # Ok::<(), oidc_core::RandomError>(())
    /// ```
    pub fn generate(rng: &dyn SecureRandom) -> Result<Secret, RandomError> {
        let mut bytes = [0u8; 32];
        let filled = rng.fill(&mut bytes);
        let secret = filled.map(|()| Secret(Zeroizing::new(base64url::encode(&bytes))));
        bytes.zeroize();
        Ok(secret?)
    }

    /// The secret, to hand to its holder. Do not log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The hash to store.
    pub fn to_hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The SHA-256 of a [`Secret`]: what is stored in place of the secret.
///
/// [`matches`](SecretHash::matches) hashes the presented value and compares in constant
/// time; equality (`==`) between two hashes is constant-time too. The hash is safe to use
/// as a storage key and to show in `Debug`: it reveals nothing usable about a 256-bit
/// random secret, and presenting the hash itself does not authenticate.
#[derive(Clone, Copy)]
pub struct SecretHash([u8; 32]);

/// A stored [`SecretHash`] could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretHashError {
    /// Not 64 hexadecimal characters.
    #[error("secret hash is not 64 hexadecimal characters")]
    InvalidHex,
    /// Not 43 characters of canonical base64url.
    #[error("secret hash is not 43 base64url characters")]
    InvalidBase64,
}

impl SecretHash {
    /// The hash of `secret`.
    ///
    /// ```
    /// use oidc_core::secret::SecretHash;
    ///
    /// let hash = SecretHash::of("presented-value");
    /// assert!(hash.matches("presented-value"));
    /// assert!(!hash.matches("presented-valuE"));
    /// ```
    pub fn of(secret: &str) -> SecretHash {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, secret.as_bytes()).as_ref());
        SecretHash(out)
    }

    /// Whether `presented` is the secret this hash was made from; constant-time in the
    /// stored hash.
    pub fn matches(&self, presented: &str) -> bool {
        let candidate = SecretHash::of(presented);
        self.0.ct_eq(&candidate.0).into()
    }

    /// The hash as 64 lowercase hexadecimal characters.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }

    /// Reads a hash written by [`to_hex`](SecretHash::to_hex) (either case).
    ///
    /// ```
    /// use oidc_core::secret::SecretHash;
    ///
    /// let hash = SecretHash::of("x");
    /// assert_eq!(SecretHash::from_hex(&hash.to_hex())?, hash);
    /// assert!(SecretHash::from_hex("abc").is_err());
    /// # Ok::<(), oidc_core::secret::SecretHashError>(())
    /// ```
    pub fn from_hex(hex: &str) -> Result<SecretHash, SecretHashError> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err(SecretHashError::InvalidHex);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err(SecretHashError::InvalidHex);
            };
            *byte = (hi << 4) | lo;
        }
        Ok(SecretHash(out))
    }

    /// The hash as 43 characters of unpadded base64url.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Reads a hash written by [`to_base64url`](SecretHash::to_base64url).
    ///
    /// ```
    /// use oidc_core::secret::SecretHash;
    ///
    /// let hash = SecretHash::of("x");
    /// assert_eq!(SecretHash::from_base64url(&hash.to_base64url())?, hash);
    /// # Ok::<(), oidc_core::secret::SecretHashError>(())
    /// ```
    pub fn from_base64url(encoded: &str) -> Result<SecretHash, SecretHashError> {
        base64url::decode_array::<32>(encoded)
            .map(SecretHash)
            .ok_or(SecretHashError::InvalidBase64)
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A hash from its 32 digest bytes.
    ///
    /// ```
    /// use oidc_core::secret::SecretHash;
    ///
    /// let hash = SecretHash::of("x");
    /// assert_eq!(SecretHash::from_bytes(*hash.as_bytes()), hash);
    /// ```
    pub fn from_bytes(bytes: [u8; 32]) -> SecretHash {
        SecretHash(bytes)
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretHash {}

impl Hash for SecretHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretHash").field(&self.to_hex()).finish()
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::test::rand::FixedByteRandom;

    use super::*;

    #[test]
    fn generated_secret_is_32_bytes_of_base64url() {
        let s = Secret::generate(&FixedByteRandom { byte: 0xff }).unwrap();
        assert_eq!(s.expose_secret(), format!("{}8", "_".repeat(42)));
        let rng = SystemRandom::new();
        let (a, b) = (
            Secret::generate(&rng).unwrap(),
            Secret::generate(&rng).unwrap(),
        );
        assert_eq!(a.expose_secret().len(), SECRET_LEN);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(base64url::decode_array::<32>(a.expose_secret()).is_some());
    }

    #[test]
    fn comparison_uses_the_hash() {
        let secret = Secret::generate(&SystemRandom::new()).unwrap();
        let hash = secret.to_hash();
        // The stored form is the SHA-256 digest, not the secret.
        let expected = digest(&SHA256, secret.expose_secret().as_bytes());
        assert_eq!(hash.as_bytes().as_slice(), expected.as_ref());
        assert!(!hash.to_hex().contains(secret.expose_secret()));
        assert!(!hash.to_base64url().contains(secret.expose_secret()));
        assert!(hash.matches(secret.expose_secret()));
    }

    #[test]
    fn attack_one_character_change_fails() {
        let secret = Secret::generate(&SystemRandom::new()).unwrap();
        let hash = secret.to_hash();
        let s = secret.expose_secret();
        for i in [0, 21, 42] {
            let mut changed: Vec<u8> = s.bytes().collect();
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).unwrap();
            assert!(!hash.matches(&changed), "position {i}");
        }
        assert!(!hash.matches(&s[..42]), "truncated");
        assert!(!hash.matches(&format!("{s}A")), "extended");
        assert!(!hash.matches(""), "empty");
    }

    #[test]
    fn attack_stolen_hash_cannot_be_presented_as_the_secret() {
        let secret = Secret::generate(&SystemRandom::new()).unwrap();
        let hash = secret.to_hash();
        assert!(!hash.matches(&hash.to_hex()));
        assert!(!hash.matches(&hash.to_base64url()));
    }

    #[test]
    fn storage_round_trips() {
        let hash = SecretHash::of("abc");
        // SHA-256("abc"), FIPS 180-2 B.1.
        assert_eq!(
            hash.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(SecretHash::from_hex(&hash.to_hex()).unwrap(), hash);
        assert_eq!(
            SecretHash::from_hex(&hash.to_hex().to_uppercase()).unwrap(),
            hash
        );
        assert_eq!(
            SecretHash::from_base64url(&hash.to_base64url()).unwrap(),
            hash
        );
        assert_eq!(
            SecretHash::from_hex(&hash.to_hex()[..63]),
            Err(SecretHashError::InvalidHex)
        );
        assert_eq!(
            SecretHash::from_hex(&format!("{}g", &hash.to_hex()[..63])),
            Err(SecretHashError::InvalidHex)
        );
        assert_eq!(
            SecretHash::from_base64url(&format!("{}=", hash.to_base64url())),
            Err(SecretHashError::InvalidBase64)
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::generate(&SystemRandom::new()).unwrap();
        let debug = format!("{secret:?}");
        assert_eq!(debug, "Secret(<redacted>)");
        assert!(!debug.contains(&secret.expose_secret()[..8]));
    }
}
