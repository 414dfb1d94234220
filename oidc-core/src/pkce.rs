//! Proof Key for Code Exchange (RFC 7636), `S256` only.
//!
//! The authorization endpoint parses the request's challenge with
//! [`CodeChallenge::from_request`], which refuses the `plain` method and a missing method
//! (RFC 7636 lets a missing method default to `plain`; RFC 9700 §2.1.1 says `S256` is the
//! only method that does not expose the verifier). The token endpoint parses the
//! `code_verifier` with [`CodeVerifier::parse`] and checks it with [`verify`], in constant
//! time; [`check_token_request`] does both and also refuses a verifier for a code issued
//! without a challenge (the downgrade of RFC 9700 §2.1.1).
//!
//! For the upstream leg (this server as a client of another provider),
//! [`CodeVerifier::generate`] makes a fresh verifier and [`CodeVerifier::challenge`] its
//! challenge.
//!
//! ```
//! use oidc_core::pkce::{self, CodeChallenge, CodeVerifier};
//!
//! // RFC 7636 Appendix B.
//! let challenge = CodeChallenge::from_request(
//!     Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
//!     Some("S256"),
//! )?;
//! let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?;
//! assert!(pkce::verify(&challenge, &verifier));
//! # Ok::<(), oidc_core::pkce::PkceError>(())
//! ```

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SecureRandom;
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize as _, Zeroizing};

use crate::base64url;
use crate::error::RandomError;

/// The only supported `code_challenge_method`.
pub const S256: &str = "S256";

/// Shortest `code_verifier` (RFC 7636 §4.1).
pub const MIN_VERIFIER_LEN: usize = 43;
/// Longest `code_verifier` (RFC 7636 §4.1).
pub const MAX_VERIFIER_LEN: usize = 128;

/// Why a PKCE parameter was refused. The messages never contain the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// The request has no `code_challenge` (PKCE is required for every client).
    #[error("code_challenge is required")]
    MissingChallenge,
    /// The request has a `code_challenge` but no `code_challenge_method`, which RFC 7636
    /// would read as `plain`.
    #[error("code_challenge_method is required and must be S256")]
    MissingMethod,
    /// `code_challenge_method=plain`, which exposes the verifier.
    #[error("code_challenge_method plain is not supported; use S256")]
    PlainMethod,
    /// Any other method (matching is exact: `s256` is not `S256`).
    #[error("code_challenge_method is not supported; use S256")]
    UnsupportedMethod,
    /// The challenge is not 43 characters of canonical base64url (a SHA-256 digest).
    #[error("code_challenge is not a base64url-encoded sha-256 digest")]
    MalformedChallenge,
    /// The verifier is shorter than 43 characters.
    #[error("code_verifier is shorter than 43 characters")]
    VerifierTooShort,
    /// The verifier is longer than 128 characters.
    #[error("code_verifier is longer than 128 characters")]
    VerifierTooLong,
    /// The verifier has a character outside `[A-Za-z0-9-._~]`.
    #[error("code_verifier has a character outside [A-Za-z0-9-._~]")]
    VerifierInvalidCharacter,
    /// The token request has no `code_verifier` but the code was issued with a challenge.
    #[error("code_verifier is required")]
    MissingVerifier,
    /// The token request has a `code_verifier` but the code was issued without a
    /// challenge (a PKCE downgrade, RFC 9700 §2.1.1).
    #[error("code_verifier sent for a code issued without code_challenge")]
    UnexpectedVerifier,
    /// The verifier does not hash to the challenge.
    #[error("code_verifier does not match code_challenge")]
    VerifierMismatch,
}

/// An `S256` code challenge: the SHA-256 digest of the client's code verifier.
///
/// Not a secret (it travels in the front channel), so it is `Clone` and its `Debug` shows
/// it; it is compared with the verifier's digest in constant time all the same.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CodeChallenge([u8; 32]);

impl CodeChallenge {
    /// Parses `code_challenge` and `code_challenge_method` from an authorization request.
    ///
    /// ```
    /// use oidc_core::pkce::{CodeChallenge, PkceError};
    ///
    /// let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    /// assert!(CodeChallenge::from_request(Some(c), Some("S256")).is_ok());
    /// assert_eq!(CodeChallenge::from_request(Some(c), Some("plain")), Err(PkceError::PlainMethod));
    /// assert_eq!(CodeChallenge::from_request(Some(c), None), Err(PkceError::MissingMethod));
    /// assert_eq!(CodeChallenge::from_request(None, Some("S256")), Err(PkceError::MissingChallenge));
    /// ```
    pub fn from_request(
        code_challenge: Option<&str>,
        code_challenge_method: Option<&str>,
    ) -> Result<CodeChallenge, PkceError> {
        let Some(challenge) = code_challenge else {
            return Err(PkceError::MissingChallenge);
        };
        match code_challenge_method {
            Some(S256) => CodeChallenge::from_s256(challenge),
            Some("plain") => Err(PkceError::PlainMethod),
            Some(_) => Err(PkceError::UnsupportedMethod),
            None => Err(PkceError::MissingMethod),
        }
    }

    /// Parses an `S256` challenge value, e.g. one read back from storage.
    ///
    /// ```
    /// use oidc_core::pkce::CodeChallenge;
    ///
    /// let c = CodeChallenge::from_s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")?;
    /// assert_eq!(c.as_base64url(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    /// # Ok::<(), oidc_core::pkce::PkceError>(())
    /// ```
    pub fn from_s256(challenge: &str) -> Result<CodeChallenge, PkceError> {
        if challenge.len() != 43 {
            return Err(PkceError::MalformedChallenge);
        }
        base64url::decode_array::<32>(challenge)
            .map(CodeChallenge)
            .ok_or(PkceError::MalformedChallenge)
    }

    /// The challenge as sent in requests: 43 characters of base64url.
    pub fn as_base64url(&self) -> String {
        base64url::encode(&self.0)
    }

    /// The method, always [`S256`].
    pub fn method(&self) -> &'static str {
        S256
    }
}

impl fmt::Debug for CodeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CodeChallenge")
            .field(&self.as_base64url())
            .finish()
    }
}

/// A PKCE code verifier: 43 to 128 characters from `[A-Za-z0-9-._~]`.
///
/// A secret until the code is redeemed: `Debug` is redacted, the memory is zeroed on drop,
/// and it is deliberately not `Clone`.
pub struct CodeVerifier(Zeroizing<String>);

impl CodeVerifier {
    /// Parses a `code_verifier` from a token request.
    ///
    /// ```
    /// use oidc_core::pkce::{CodeVerifier, PkceError};
    ///
    /// assert!(CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").is_ok());
    /// assert_eq!(CodeVerifier::parse("short").err(), Some(PkceError::VerifierTooShort));
    /// ```
    pub fn parse(value: &str) -> Result<CodeVerifier, PkceError> {
        if value.len() < MIN_VERIFIER_LEN {
            return Err(PkceError::VerifierTooShort);
        }
        if value.len() > MAX_VERIFIER_LEN {
            return Err(PkceError::VerifierTooLong);
        }
        if !value.bytes().all(is_unreserved) {
            return Err(PkceError::VerifierInvalidCharacter);
        }
        Ok(CodeVerifier(Zeroizing::new(value.to_owned())))
    }

    /// A fresh verifier from 32 random bytes (43 base64url characters, 256 bits), as
    /// RFC 7636 §4.1 recommends. For requests this server sends upstream.
    ///
    /// ```
    /// use aws_lc_rs::rand::SystemRandom;
    /// use oidc_core::pkce::{self, CodeVerifier};
    ///
    /// let verifier = CodeVerifier::generate(&SystemRandom::new())?;
    /// let challenge = verifier.challenge();
    /// assert_eq!(verifier.secret().len(), 43);
    /// assert!(pkce::verify(&challenge, &verifier));
    /// # Ok::<(), oidc_core::RandomError>(())
    /// ```
    pub fn generate(rng: &dyn SecureRandom) -> Result<CodeVerifier, RandomError> {
        let mut bytes = [0u8; 32];
        let filled = rng.fill(&mut bytes);
        let verifier = filled.map(|()| CodeVerifier(Zeroizing::new(base64url::encode(&bytes))));
        bytes.zeroize();
        Ok(verifier?)
    }

    /// The verifier, to send in a token request.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The `S256` challenge for this verifier.
    pub fn challenge(&self) -> CodeChallenge {
        CodeChallenge(sha256(self.0.as_bytes()))
    }
}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier(<redacted>)")
    }
}

/// Whether `verifier` hashes to `challenge`, compared in constant time.
///
/// ```
/// use aws_lc_rs::rand::SystemRandom;
/// use oidc_core::pkce::{self, CodeVerifier};
///
/// let rng = SystemRandom::new();
/// let (a, b) = (CodeVerifier::generate(&rng)?, CodeVerifier::generate(&rng)?);
/// assert!(!pkce::verify(&a.challenge(), &b));
/// # Ok::<(), oidc_core::RandomError>(())
/// ```
pub fn verify(challenge: &CodeChallenge, verifier: &CodeVerifier) -> bool {
    let computed = sha256(verifier.0.as_bytes());
    computed.ct_eq(&challenge.0).into()
}

/// The whole PKCE check of a token request, given the challenge stored with the code and
/// the request's `code_verifier`. Every error maps to `invalid_grant`.
///
/// - challenge and matching verifier: `Ok`;
/// - challenge without verifier: [`PkceError::MissingVerifier`];
/// - verifier without challenge: [`PkceError::UnexpectedVerifier`] (downgrade);
/// - neither: [`PkceError::MissingChallenge`] (PKCE is required for every client, so such
///   a code should not exist);
/// - a malformed or wrong verifier: its syntax error, or [`PkceError::VerifierMismatch`].
///
/// ```
/// use oidc_core::pkce::{self, CodeChallenge, PkceError};
///
/// let challenge = CodeChallenge::from_s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")?;
/// let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// assert_eq!(pkce::check_token_request(Some(&challenge), Some(verifier)), Ok(()));
/// assert_eq!(
///     pkce::check_token_request(None, Some(verifier)),
///     Err(PkceError::UnexpectedVerifier)
/// );
/// # Ok::<(), PkceError>(())
/// ```
pub fn check_token_request(
    challenge: Option<&CodeChallenge>,
    code_verifier: Option<&str>,
) -> Result<(), PkceError> {
    match (challenge, code_verifier) {
        (Some(challenge), Some(presented)) => {
            let verifier = CodeVerifier::parse(presented)?;
            if verify(challenge, &verifier) {
                Ok(())
            } else {
                Err(PkceError::VerifierMismatch)
            }
        }
        (Some(_), None) => Err(PkceError::MissingVerifier),
        (None, Some(_)) => Err(PkceError::UnexpectedVerifier),
        (None, None) => Err(PkceError::MissingChallenge),
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

/// `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::test::rand::FixedByteRandom;

    use super::*;

    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn rfc_challenge() -> CodeChallenge {
        CodeChallenge::from_request(Some(RFC_CHALLENGE), Some("S256")).unwrap()
    }

    #[test]
    fn rfc_7636_appendix_b_vector() {
        let verifier = CodeVerifier::parse(RFC_VERIFIER).unwrap();
        assert_eq!(verifier.challenge().as_base64url(), RFC_CHALLENGE);
        assert_eq!(verifier.challenge(), rfc_challenge());
        assert!(verify(&rfc_challenge(), &verifier));
    }

    #[test]
    fn attack_wrong_verifier_is_refused() {
        let other = CodeVerifier::parse(&format!("{}A", &RFC_VERIFIER[..42])).unwrap();
        assert!(!verify(&rfc_challenge(), &other));
        let generated = CodeVerifier::generate(&SystemRandom::new()).unwrap();
        assert!(!verify(&rfc_challenge(), &generated));
    }

    #[test]
    fn attack_challenge_presented_as_verifier_is_refused() {
        // The challenge is public; presenting it as the verifier must not work.
        let verifier = CodeVerifier::parse(RFC_CHALLENGE).unwrap();
        assert!(!verify(&rfc_challenge(), &verifier));
    }

    #[test]
    fn attack_plain_method_downgrade_is_refused() {
        // With `plain`, the challenge would be the verifier itself.
        assert_eq!(
            CodeChallenge::from_request(Some(RFC_VERIFIER), Some("plain")),
            Err(PkceError::PlainMethod)
        );
        assert_eq!(
            CodeChallenge::from_request(Some(RFC_VERIFIER), None),
            Err(PkceError::MissingMethod),
            "a missing method means plain in RFC 7636; refused with its own error"
        );
        for method in ["s256", "S256 ", "SHA256", "", "S512", "PLAIN"] {
            assert_eq!(
                CodeChallenge::from_request(Some(RFC_CHALLENGE), Some(method)),
                Err(PkceError::UnsupportedMethod),
                "{method:?}"
            );
        }
    }

    #[test]
    fn attack_missing_challenge_is_refused() {
        assert_eq!(
            CodeChallenge::from_request(None, None),
            Err(PkceError::MissingChallenge)
        );
        assert_eq!(
            CodeChallenge::from_request(None, Some("S256")),
            Err(PkceError::MissingChallenge)
        );
    }

    #[test]
    fn attack_malformed_challenge_is_refused() {
        for bad in [
            "",
            &RFC_CHALLENGE[..42],
            &format!("{RFC_CHALLENGE}A"),
            &format!("{RFC_CHALLENGE}="),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
        ] {
            assert_eq!(
                CodeChallenge::from_request(Some(bad), Some("S256")),
                Err(PkceError::MalformedChallenge),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn attack_verifier_too_short_is_refused() {
        assert_eq!(
            CodeVerifier::parse(&RFC_VERIFIER[..42]).err(),
            Some(PkceError::VerifierTooShort)
        );
        assert_eq!(
            CodeVerifier::parse("").err(),
            Some(PkceError::VerifierTooShort)
        );
    }

    #[test]
    fn attack_verifier_too_long_is_refused() {
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
        assert_eq!(
            CodeVerifier::parse(&"a".repeat(129)).err(),
            Some(PkceError::VerifierTooLong)
        );
    }

    #[test]
    fn attack_verifier_bad_characters_are_refused() {
        for bad in ['+', '/', '=', ' ', '%', '\n', '\u{e9}'] {
            let value = format!("{}{bad}", &RFC_VERIFIER[..42]);
            assert_eq!(
                CodeVerifier::parse(&value).err(),
                Some(PkceError::VerifierInvalidCharacter),
                "{bad:?}"
            );
        }
        assert!(CodeVerifier::parse(&format!("{}-._~", &RFC_VERIFIER[..40])).is_ok());
    }

    #[test]
    fn attack_verifier_without_stored_challenge_is_refused() {
        assert_eq!(
            check_token_request(None, Some(RFC_VERIFIER)),
            Err(PkceError::UnexpectedVerifier)
        );
        assert_eq!(
            check_token_request(None, None),
            Err(PkceError::MissingChallenge)
        );
    }

    #[test]
    fn attack_missing_verifier_is_refused() {
        assert_eq!(
            check_token_request(Some(&rfc_challenge()), None),
            Err(PkceError::MissingVerifier)
        );
    }

    #[test]
    fn token_request_check() {
        let challenge = rfc_challenge();
        assert_eq!(
            check_token_request(Some(&challenge), Some(RFC_VERIFIER)),
            Ok(())
        );
        assert_eq!(
            check_token_request(Some(&challenge), Some(&"a".repeat(43))),
            Err(PkceError::VerifierMismatch)
        );
        assert_eq!(
            check_token_request(Some(&challenge), Some(RFC_CHALLENGE)),
            Err(PkceError::VerifierMismatch)
        );
        assert_eq!(
            check_token_request(Some(&challenge), Some("short")),
            Err(PkceError::VerifierTooShort)
        );
    }

    #[test]
    fn generated_verifier_is_43_unreserved_chars_from_the_rng() {
        let v = CodeVerifier::generate(&FixedByteRandom { byte: 0 }).unwrap();
        assert_eq!(v.secret(), "A".repeat(43));
        let v = CodeVerifier::generate(&SystemRandom::new()).unwrap();
        assert_eq!(v.secret().len(), 43);
        assert!(CodeVerifier::parse(v.secret()).is_ok());
        assert!(verify(&v.challenge(), &v));
    }

    #[test]
    fn verifier_debug_is_redacted() {
        let v = CodeVerifier::parse(RFC_VERIFIER).unwrap();
        let debug = format!("{v:?}");
        assert_eq!(debug, "CodeVerifier(<redacted>)");
        assert!(!debug.contains(&RFC_VERIFIER[..8]));
    }

    #[test]
    fn challenge_debug_and_method() {
        let c = rfc_challenge();
        assert_eq!(
            format!("{c:?}"),
            format!("CodeChallenge({RFC_CHALLENGE:?})")
        );
        assert_eq!(c.method(), "S256");
    }
}
