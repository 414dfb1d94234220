//! Password hashing (Argon2id) and the users of the local password login.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::RandomError;

/// Argon2id memory cost in KiB (19 MiB, the OWASP minimum for Argon2id).
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
/// Argon2id iterations (OWASP: 2 with 19 MiB).
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id parallelism.
pub const ARGON2_P_COST: u32 = 1;

/// Longest password accepted, in bytes. Longer input is refused before any hashing, so a
/// megabyte "password" costs nothing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashing or checking a password failed, or a stored hash is unusable. Messages never
/// contain the password or the hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password is empty or longer than [`MAX_PASSWORD_BYTES`].
    #[error("password must be 1 to {MAX_PASSWORD_BYTES} bytes")]
    BadLength,
    /// The stored hash is not an Argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    #[error("password hash is not an argon2id phc string")]
    NotArgon2id,
    /// The random number generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Argon2 itself failed (e.g. parameters out of range).
    #[error("argon2 failed: {0}")]
    Argon2(String),
    /// The password login's configuration is unusable (e.g. two users with one name).
    #[error("password login configuration: {0}")]
    Config(String),
}

/// Hashes `password` with Argon2id (m = 19 MiB, t = 2, p = 1, 16-byte random salt) into a
/// PHC string for a [`LocalUser`]'s configuration, as the `hash-password` subcommand does.
///
/// Slow on purpose (tens of milliseconds): call it from blocking code.
///
/// ```
/// use oidc_core::login::{PasswordHashString, hash_password};
///
/// let phc = hash_password("correct horse battery staple")?;
/// assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
/// let stored = PasswordHashString::parse(&phc)?;
/// assert!(stored.verify("correct horse battery staple"));
/// assert!(!stored.verify("Correct horse battery staple"));
/// # Ok::<(), oidc_core::login::PasswordError>(())
/// ```
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_password_with(password, &SystemRandom::new())
}

/// [`hash_password`] with the salt from `rng`.
pub fn hash_password_with(password: &str, rng: &dyn SecureRandom) -> Result<String, PasswordError> {
    hash_with_params(password, rng, default_params()?)
}

pub(crate) fn default_params() -> Result<Params, PasswordError> {
    Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .map_err(|e| PasswordError::Argon2(e.to_string()))
}

pub(crate) fn hash_with_params(
    password: &str,
    rng: &dyn SecureRandom,
    params: Params,
) -> Result<String, PasswordError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::BadLength);
    }
    let mut salt_bytes = [0u8; 16];
    rng.fill(&mut salt_bytes).map_err(RandomError::from)?;
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError::Argon2(e.to_string()));
    salt_bytes.zeroize();
    let salt = salt?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    hasher
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Argon2(e.to_string()))
}

/// A random password for a first user: 20 characters from a 32-letter alphabet without
/// look-alikes (`0`/`o`, `1`/`l`), 100 bits, in groups of five for reading aloud.
///
/// ```
/// use aws_lc_rs::rand::SystemRandom;
/// use oidc_core::login::generate_password;
///
/// let password = generate_password(&SystemRandom::new())?;
/// assert_eq!(password.len(), 23);
/// assert_eq!(password.matches('-').count(), 3);
/// # Ok::<(), oidc_core::RandomError>(())
/// ```
pub fn generate_password(rng: &dyn SecureRandom) -> Result<Zeroizing<String>, RandomError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = Zeroizing::new([0u8; 20]);
    rng.fill(bytes.as_mut())?;
    let mut out = Zeroizing::new(String::with_capacity(23));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        // 256 is a multiple of 32: every letter is equally likely.
        out.push(char::from(ALPHABET[usize::from(b % 32)]));
    }
    Ok(out)
}

/// A validated Argon2id PHC string, as stored in configuration.
///
/// `Debug` shows only the parameters: the salt and hash are not secrets in the way a
/// password is, but they help offline guessing and have no place in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHashString(Box<str>);

impl PasswordHashString {
    /// Parses a PHC string and checks that it is Argon2id.
    ///
    /// ```
    /// use oidc_core::login::PasswordHashString;
    ///
    /// assert!(PasswordHashString::parse("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG").is_ok());
    /// assert!(PasswordHashString::parse("$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG").is_err());
    /// assert!(PasswordHashString::parse("hunter2").is_err());
    /// ```
    pub fn parse(phc: &str) -> Result<PasswordHashString, PasswordError> {
        let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::NotArgon2id)?;
        if parsed.algorithm.as_str() != "argon2id" || parsed.hash.is_none() {
            return Err(PasswordError::NotArgon2id);
        }
        Params::try_from(&parsed).map_err(|_| PasswordError::NotArgon2id)?;
        Ok(PasswordHashString(phc.into()))
    }

    /// Whether `password` is the one this hash was made from. Slow on purpose: call it
    /// from blocking code (`spawn_blocking`).
    pub fn verify(&self, password: &str) -> bool {
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let Ok(parsed) = PasswordHash::new(&self.0) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }

    /// The Argon2 parameters of this hash.
    pub(crate) fn params(&self) -> Option<Params> {
        let parsed = PasswordHash::new(&self.0).ok()?;
        Params::try_from(&parsed).ok()
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.params() {
            Some(p) => write!(
                f,
                "PasswordHashString(argon2id m={} t={} p={})",
                p.m_cost(),
                p.t_cost(),
                p.p_cost()
            ),
            None => f.write_str("PasswordHashString(<unreadable>)"),
        }
    }
}

/// A user of the local password login, from configuration.
///
/// ```
/// use oidc_core::login::{LocalUser, PasswordHashString};
///
/// let hash = PasswordHashString::parse(&oidc_core::login::hash_password("pw")?)?;
/// let user = LocalUser::new("alice", hash)
///     .with_email("alice@example.com", true)
///     .with_name("Alice");
/// assert_eq!(user.username, "alice");
/// # Ok::<(), oidc_core::login::PasswordError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalUser {
    /// The login name (compared without regard to ASCII case; our subject is derived from
    /// it as configured).
    pub username: String,
    /// The Argon2id hash of the password.
    pub password_hash: PasswordHashString,
    /// The email address, if any.
    pub email: Option<String>,
    /// Whether the operator vouches for the email address. Only a verified email is ever
    /// given to the provider as verified.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
}

impl LocalUser {
    /// A user with a name and a password hash.
    pub fn new(username: impl Into<String>, password_hash: PasswordHashString) -> Self {
        LocalUser {
            username: username.into(),
            password_hash,
            email: None,
            email_verified: false,
            name: None,
        }
    }

    /// With an email address, verified or not.
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>, verified: bool) -> Self {
        self.email = Some(email.into());
        self.email_verified = verified;
        self
    }

    /// With a display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::test::rand::FixedByteRandom;

    use super::*;

    fn cheap_params() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    #[test]
    fn hash_is_argon2id_with_owasp_parameters() {
        let phc = hash_password("pw").unwrap();
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19 * 1024, 2, 1)
        );
        assert!(PasswordHashString::parse(&phc).unwrap().verify("pw"));
        assert_ne!(hash_password("pw").unwrap(), phc, "fresh salt each time");
    }

    #[test]
    fn verify_refuses_wrong_and_oversized_passwords() {
        let phc = hash_with_params("secret", &SystemRandom::new(), cheap_params()).unwrap();
        let stored = PasswordHashString::parse(&phc).unwrap();
        assert!(stored.verify("secret"));
        assert!(!stored.verify("secret "));
        assert!(!stored.verify(""));
        assert!(!stored.verify(&"a".repeat(MAX_PASSWORD_BYTES + 1)));
        assert_eq!(
            hash_password(&"a".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::BadLength)
        );
        assert_eq!(hash_password(""), Err(PasswordError::BadLength));
    }

    #[test]
    fn debug_hides_salt_and_hash() {
        let phc = hash_with_params("secret", &FixedByteRandom { byte: 7 }, cheap_params()).unwrap();
        let stored = PasswordHashString::parse(&phc).unwrap();
        let debug = format!("{stored:?}");
        assert_eq!(debug, "PasswordHashString(argon2id m=64 t=1 p=1)");
        let hash_part = phc.rsplit('$').next().unwrap();
        assert!(!debug.contains(hash_part));
    }

    #[test]
    fn generated_passwords_use_the_alphabet() {
        let p = generate_password(&FixedByteRandom { byte: 0 }).unwrap();
        assert_eq!(p.as_str(), "aaaaa-aaaaa-aaaaa-aaaaa");
        let p = generate_password(&SystemRandom::new()).unwrap();
        assert!(
            p.chars()
                .all(|c| c == '-' || "abcdefghijkmnpqrstuvwxyz23456789".contains(c))
        );
    }
}
