//! IETF Token Status Lists (draft-ietf-oauth-status-list): the `status` claim of access
//! tokens, the compressed bit array and the signed Status List Token
//! (`typ: statuslist+jwt`).
//!
//! Every access token the provider issues names one entry of one list:
//! `"status": {"status_list": {"idx": 17, "uri": "https://as.example/statuslists/1"}}`.
//! The entry belongs to the token's grant, so every access token of one grant shares it
//! and revoking the grant flips one bit. A resource server fetches the list at `uri`
//! (at most once per `ttl`), checks its signature with the provider's JWKS and reads bit
//! `idx`: `1` means revoked.
//!
//! # Encoding
//!
//! One bit per entry (`bits: 1`). Entry `i` is bit `i % 8` of byte `i / 8`, counting from
//! the least significant bit; the byte array is compressed with DEFLATE in a ZLIB wrapper
//! (RFC 1950/1951) and base64url-encoded without padding (`lst`).
//!
//! ```
//! use oidc_core::status_list::StatusList;
//!
//! // The draft's example: entries 0, 3, 4, 5, 7, 8, 9, 13 and 15 are set.
//! let mut list = StatusList::new(16)?;
//! for index in [0, 3, 4, 5, 7, 8, 9, 13, 15] {
//!     list.set(index);
//! }
//! assert_eq!(list.as_bytes(), [0xB9, 0xA3]);
//! let decoded = StatusList::decode(&list.encode()?, 16)?;
//! assert!(decoded.get(13) && !decoded.get(14));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Privacy
//!
//! The draft (§12, unlinkability) asks that one index not tie together tokens that should
//! be unlinkable. All access tokens of one grant share its index; they are linkable anyway
//! through `sub` and `client_id`, so the shared index reveals nothing new, and it lets
//! one bit revoke the whole grant. Indices are allocated in sequence: a resource server
//! can tell roughly when a grant was created from its index, which the token's `iat`
//! already tells it. Lists are large (2^20 entries by default) so that fetching one
//! reveals nothing about which token is being checked.

use std::io::{Read as _, Write as _};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde::{Deserialize, Serialize};

use crate::base64url;
use crate::jwt::{self, JwtError};
use crate::keys::SigningKey;
use crate::types::Issuer;

pub use crate::status_claim::{
    STATUS_LISTS_PATH, StatusClaim, StatusIndex, StatusListReference, status_list_uri,
};

/// `typ` of Status List Tokens.
pub const TYP_STATUS_LIST: &str = "statuslist+jwt";
/// The media type a Status List Token is served as.
pub const STATUS_LIST_MEDIA_TYPE: &str = "application/statuslist+jwt";
/// Most entries a list may have (2^24: 2 MiB uncompressed).
pub const MAX_LIST_SIZE: u64 = 1 << 24;

/// Why a status list could not be built, encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusListError {
    /// The size is zero, not a multiple of 8, or above [`MAX_LIST_SIZE`].
    #[error("a status list must have a multiple of 8 entries, at most 2^24")]
    InvalidSize,
    /// `lst` is not base64url, not ZLIB, or decompresses to another size.
    #[error("the status list is not valid base64url zlib data of the expected size")]
    Malformed,
    /// Compression failed.
    #[error("the status list could not be compressed")]
    Compression,
}

/// A list of one-bit statuses (`0` valid, `1` revoked).
#[derive(Clone, PartialEq, Eq)]
pub struct StatusList {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for StatusList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusList")
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

impl StatusList {
    /// A list of `size` entries, all `0`.
    ///
    /// ```
    /// use oidc_core::status_list::StatusList;
    ///
    /// assert_eq!(StatusList::new(1 << 20)?.size(), 1 << 20);
    /// assert!(StatusList::new(12).is_err());
    /// # Ok::<(), oidc_core::status_list::StatusListError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StatusListError::InvalidSize`] unless `size` is a positive multiple of 8 no larger
    /// than [`MAX_LIST_SIZE`].
    pub fn new(size: u64) -> Result<StatusList, StatusListError> {
        let bytes = byte_len(size)?;
        Ok(StatusList {
            bytes: vec![0; bytes],
        })
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        (self.bytes.len() as u64) * 8
    }

    /// Sets entry `index` to `1`; an index beyond the list is ignored.
    pub fn set(&mut self, index: u64) {
        let Some(byte) = self.byte_mut(index) else {
            return;
        };
        *byte |= 1 << (index % 8);
    }

    /// Entry `index` (`false` beyond the list).
    pub fn get(&self, index: u64) -> bool {
        usize::try_from(index / 8)
            .ok()
            .and_then(|at| self.bytes.get(at))
            .is_some_and(|byte| byte & (1 << (index % 8)) != 0)
    }

    /// The uncompressed bit array.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `lst`: the bit array ZLIB-compressed (best compression) and base64url-encoded.
    ///
    /// # Errors
    ///
    /// [`StatusListError::Compression`] if the compressor fails (it writes to memory).
    pub fn encode(&self) -> Result<String, StatusListError> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        encoder
            .write_all(&self.bytes)
            .map_err(|_| StatusListError::Compression)?;
        let compressed = encoder.finish().map_err(|_| StatusListError::Compression)?;
        Ok(base64url::encode(&compressed))
    }

    /// Decodes `lst` (for verifiers and tests) into a list of at most `max_size` entries.
    /// Decompression stops past `max_size / 8` bytes, so a small `lst` cannot expand
    /// without limit.
    ///
    /// # Errors
    ///
    /// [`StatusListError::InvalidSize`] for a bad `max_size`, [`StatusListError::Malformed`]
    /// if `lst` is not base64url ZLIB data of 1 to `max_size / 8` bytes.
    pub fn decode(lst: &str, max_size: u64) -> Result<StatusList, StatusListError> {
        use base64::Engine as _;
        let limit = byte_len(max_size)?;
        let compressed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(lst)
            .map_err(|_| StatusListError::Malformed)?;
        let mut bytes = Vec::new();
        ZlibDecoder::new(compressed.as_slice())
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| StatusListError::Malformed)?;
        if bytes.is_empty() || bytes.len() > limit {
            return Err(StatusListError::Malformed);
        }
        Ok(StatusList { bytes })
    }

    fn byte_mut(&mut self, index: u64) -> Option<&mut u8> {
        let at = usize::try_from(index / 8).ok()?;
        self.bytes.get_mut(at)
    }
}

/// The bytes of a list of `size` one-bit entries.
fn byte_len(size: u64) -> Result<usize, StatusListError> {
    if size == 0 || !size.is_multiple_of(8) || size > MAX_LIST_SIZE {
        return Err(StatusListError::InvalidSize);
    }
    usize::try_from(size / 8).map_err(|_| StatusListError::InvalidSize)
}

/// The claims of a Status List Token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListTokenClaims {
    /// The issuer (the same as in the referenced tokens).
    pub iss: String,
    /// The list's URI: exactly the `uri` of the referenced tokens' `status_list`.
    pub sub: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds); verifiers refuse the list afterwards.
    pub exp: u64,
    /// How long (seconds) a consumer may cache the list before fetching it again.
    pub ttl: u64,
    /// The list.
    pub status_list: EncodedStatusList,
}

/// The `status_list` claim of a Status List Token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedStatusList {
    /// Bits per entry (always 1 here).
    pub bits: u8,
    /// The compressed, base64url-encoded bit array ([`StatusList::encode`]).
    pub lst: String,
}

impl StatusListTokenClaims {
    /// The claims for `list` (number `number` of `issuer`), issued at `iat`.
    ///
    /// # Errors
    ///
    /// [`StatusListError::Compression`] if compression fails.
    pub fn new(
        issuer: &Issuer,
        number: u64,
        list: &StatusList,
        iat: u64,
        exp: u64,
        ttl: u64,
    ) -> Result<StatusListTokenClaims, StatusListError> {
        Ok(StatusListTokenClaims {
            iss: issuer.as_str().to_owned(),
            sub: status_list_uri(issuer, number),
            iat,
            exp,
            ttl,
            status_list: EncodedStatusList {
                bits: 1,
                lst: list.encode()?,
            },
        })
    }
}

/// Signs a Status List Token: [`jwt::encode_jwt`] with `typ: statuslist+jwt`, after
/// checking that `exp` is after `iat`.
///
/// ```
/// use oidc_core::keys::{KeySize, SigningKey};
/// use oidc_core::status_list::{StatusList, StatusListTokenClaims, encode_status_list_token};
/// use oidc_core::types::Issuer;
///
/// let key = SigningKey::generate(KeySize::Rsa2048)?;
/// let issuer = Issuer::parse("https://auth.example.com")?;
/// let claims = StatusListTokenClaims::new(&issuer, 1, &StatusList::new(1024)?, 1_700_000_000, 1_700_003_600, 10)?;
/// let token = encode_status_list_token(&key, &claims)?;
/// assert_eq!(token.split('.').count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`JwtError::InvalidLifetime`] if `exp <= iat`, or a signing error.
pub fn encode_status_list_token(
    key: &SigningKey,
    claims: &StatusListTokenClaims,
) -> Result<String, JwtError> {
    if claims.exp <= claims.iat {
        return Err(JwtError::InvalidLifetime);
    }
    jwt::encode_jwt(key, TYP_STATUS_LIST, claims)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::keys::test_keys;

    /// draft-ietf-oauth-status-list, "Status List" section: the 1-bit example.
    #[test]
    fn one_bit_example_of_the_draft() {
        let statuses = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
        let mut list = StatusList::new(16).unwrap();
        for (index, status) in statuses.iter().enumerate() {
            if *status == 1 {
                list.set(index as u64);
            }
        }
        assert_eq!(list.as_bytes(), [0xB9, 0xA3]);
        // The draft's `lst`, produced with another compression level, decodes to the same
        // bytes; ours decodes back too.
        let theirs = StatusList::decode("eNrbuRgAAhcBXQ", 16).unwrap();
        assert_eq!(theirs.as_bytes(), [0xB9, 0xA3]);
        let ours = StatusList::decode(&list.encode().unwrap(), 16).unwrap();
        assert_eq!(ours, list);
        for (index, status) in statuses.iter().enumerate() {
            assert_eq!(ours.get(index as u64), *status == 1, "entry {index}");
        }
    }

    #[test]
    fn lst_is_a_zlib_stream() {
        let list = StatusList::new(1 << 20).unwrap();
        let compressed = URL_SAFE_NO_PAD.decode(list.encode().unwrap()).unwrap();
        // RFC 1950: CM = 8 (deflate), and the header checksum.
        assert_eq!(compressed[0] & 0x0f, 8);
        assert_eq!(
            (u16::from(compressed[0]) << 8 | u16::from(compressed[1])) % 31,
            0
        );
        assert!(
            compressed.len() < 1024,
            "an empty 2^20 list compresses well"
        );
    }

    #[test]
    fn sizes_and_bounds() {
        for bad in [0, 7, 12, MAX_LIST_SIZE + 8] {
            assert_eq!(
                StatusList::new(bad),
                Err(StatusListError::InvalidSize),
                "{bad}"
            );
        }
        let mut list = StatusList::new(8).unwrap();
        list.set(8);
        list.set(u64::MAX);
        assert_eq!(list.as_bytes(), [0]);
        assert!(!list.get(8));
        list.set(7);
        assert_eq!(list.as_bytes(), [0x80]);
    }

    #[test]
    fn attack_decoding_refuses_wrong_sizes_and_garbage() {
        let list = StatusList::new(64).unwrap().encode().unwrap();
        assert_eq!(
            StatusList::decode(&list, 32),
            Err(StatusListError::Malformed)
        );
        assert_eq!(StatusList::decode(&list, 128).unwrap().size(), 64);
        assert_eq!(
            StatusList::decode("not zlib", 64),
            Err(StatusListError::Malformed)
        );
        // A zip bomb: 2^24 bytes compressed; decoding for a small list stops early.
        let big = StatusList::new(MAX_LIST_SIZE).unwrap().encode().unwrap();
        assert_eq!(
            StatusList::decode(&big, 64),
            Err(StatusListError::Malformed)
        );
    }

    #[test]
    fn status_list_token_has_the_draft_header_and_claims() {
        let key = test_keys::key(0);
        let issuer = Issuer::parse("https://auth.example.com").unwrap();
        let mut list = StatusList::new(1024).unwrap();
        list.set(5);
        let claims = StatusListTokenClaims::new(&issuer, 2, &list, 100, 200, 10).unwrap();
        let token = encode_status_list_token(&key, &claims).unwrap();
        let part = |i: usize| -> serde_json::Value {
            let text = token.split('.').nth(i).unwrap();
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
        };
        assert_eq!(part(0)["typ"], "statuslist+jwt");
        assert_eq!(part(0)["alg"], "RS256");
        assert_eq!(part(0)["kid"], key.kid());
        let payload = part(1);
        assert_eq!(payload["sub"], "https://auth.example.com/statuslists/2");
        assert_eq!(payload["iss"], "https://auth.example.com");
        assert_eq!(payload["ttl"], 10);
        assert_eq!(payload["status_list"]["bits"], 1);
        let decoded =
            StatusList::decode(payload["status_list"]["lst"].as_str().unwrap(), 1024).unwrap();
        assert!(decoded.get(5) && !decoded.get(4));
        let mut expired = claims;
        expired.exp = expired.iat;
        assert_eq!(
            encode_status_list_token(&key, &expired),
            Err(JwtError::InvalidLifetime)
        );
    }
}
