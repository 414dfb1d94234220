//! Sealing the secret fields of the page's shared rows (feature `postgres`): AES-256-GCM
//! under a key every replica derives, with HKDF-SHA256, from a secret the operator gives
//! all of them; a random 96-bit nonce per write; the table and the row's key as
//! associated data, so a ciphertext opens only in the row it was written for.
//!
//! A sealed value is `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// The HKDF `info` of the sealing key. A new format gets a new string, so its key differs.
pub(crate) const KEY_INFO: &[u8] = b"mcp-api memory page sessions v1";

/// The shortest secret a key is derived from.
pub(crate) const MIN_SECRET_BYTES: usize = 32;

/// The first byte of every sealed value.
const FORMAT: u8 = 1;

/// The AES-256-GCM key of the page's shared rows.
pub(crate) struct Sealer {
    key: LessSafeKey,
}

/// Which table a sealed value belongs to (part of the associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Session,
    Login,
}

impl Table {
    fn tag(self) -> &'static [u8] {
        match self {
            Table::Session => b"mcp_page_session\0",
            Table::Login => b"mcp_page_login\0",
        }
    }
}

impl Sealer {
    /// The key derived from `secret`; `None` if the secret is shorter than
    /// [`MIN_SECRET_BYTES`] (or, which does not happen, the derivation fails).
    pub(crate) fn derive(secret: &[u8]) -> Option<Sealer> {
        if secret.len() < MIN_SECRET_BYTES {
            return None;
        }
        let prk = Salt::new(HKDF_SHA256, &[]).extract(secret);
        let okm = prk.expand(&[KEY_INFO], &AES_256_GCM).ok()?;
        Some(Sealer {
            key: LessSafeKey::new(UnboundKey::from(okm)),
        })
    }

    /// Seals `plaintext` for the row `key` of `table`; `extra` is bound to it as well (the
    /// row's clear columns that must not change). `None` only if the system's random
    /// generator or the cipher fails.
    pub(crate) fn seal(
        &self,
        table: Table,
        key: &[u8; 32],
        extra: &[u8],
        plaintext: &[u8],
    ) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        sealed.push(FORMAT);
        sealed.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(table, key, extra)),
                &mut body,
            )
            .ok()?;
        sealed.extend_from_slice(&body);
        Some(sealed)
    }

    /// Opens a value sealed by [`Sealer::seal`] for the same table, row and `extra`;
    /// `None` for anything else (another row, another key, a changed byte, another format).
    pub(crate) fn open(
        &self,
        table: Table,
        key: &[u8; 32],
        extra: &[u8],
        sealed: &[u8],
    ) -> Option<Vec<u8>> {
        let (&format, rest) = sealed.split_first()?;
        if format != FORMAT || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plaintext = self
            .key
            .open_in_place(
                nonce,
                Aad::from(associated_data(table, key, extra)),
                &mut body,
            )
            .ok()?;
        Some(plaintext.to_vec())
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// `table tag (NUL-terminated) ‖ row key (32 bytes) ‖ extra`: unambiguous, since the tag
/// ends in NUL and the key has a fixed length.
fn associated_data(table: Table, key: &[u8; 32], extra: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(table.tag().len() + key.len() + extra.len());
    aad.extend_from_slice(table.tag());
    aad.extend_from_slice(key);
    aad.extend_from_slice(extra);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a client secret of at least thirty-two bytes";

    #[test]
    fn a_sealed_value_opens_only_in_its_own_row_and_table() {
        let sealer = Sealer::derive(SECRET).unwrap();
        let sealed = sealer
            .seal(Table::Session, &[1; 32], b"alice", b"token")
            .unwrap();
        assert_eq!(
            sealer
                .open(Table::Session, &[1; 32], b"alice", &sealed)
                .unwrap(),
            b"token"
        );
        assert!(
            sealer
                .open(Table::Session, &[2; 32], b"alice", &sealed)
                .is_none()
        );
        assert!(
            sealer
                .open(Table::Session, &[1; 32], b"bob", &sealed)
                .is_none()
        );
        assert!(
            sealer
                .open(Table::Login, &[1; 32], b"alice", &sealed)
                .is_none()
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(
            sealer
                .open(Table::Session, &[1; 32], b"alice", &flipped)
                .is_none()
        );
        assert!(
            sealer
                .open(Table::Session, &[1; 32], b"alice", &[])
                .is_none()
        );
        assert!(
            sealer
                .open(Table::Session, &[1; 32], b"alice", &[FORMAT])
                .is_none()
        );
    }

    #[test]
    fn each_write_has_its_own_nonce_and_hides_the_plaintext() {
        let sealer = Sealer::derive(SECRET).unwrap();
        let a = sealer
            .seal(Table::Login, &[0; 32], b"", b"verifier")
            .unwrap();
        let b = sealer
            .seal(Table::Login, &[0; 32], b"", b"verifier")
            .unwrap();
        assert_ne!(a[1..1 + NONCE_LEN], b[1..1 + NONCE_LEN]);
        assert!(!a.windows(8).any(|window| window == b"verifier"));
    }

    #[test]
    fn another_secret_opens_nothing_and_short_secrets_are_refused() {
        let sealed = Sealer::derive(SECRET)
            .unwrap()
            .seal(Table::Session, &[0; 32], b"", b"x")
            .unwrap();
        let other = Sealer::derive(b"another secret, also thirty-two bytes long").unwrap();
        assert!(other.open(Table::Session, &[0; 32], b"", &sealed).is_none());
        assert!(Sealer::derive(&[7; MIN_SECRET_BYTES - 1]).is_none());
        assert!(Sealer::derive(&[7; MIN_SECRET_BYTES]).is_some());
    }

    #[test]
    fn the_key_is_hkdf_sha256_of_the_secret_with_the_fixed_info() {
        // The same derivation by hand (RFC 5869 with an empty salt), then a value sealed
        // with that raw key must open.
        let prk = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[0; 32]),
            SECRET,
        );
        let mut t1_input = KEY_INFO.to_vec();
        t1_input.push(1);
        let okm = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, prk.as_ref()),
            &t1_input,
        );
        let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, okm.as_ref()).unwrap());
        let sealed = Sealer::derive(SECRET)
            .unwrap()
            .seal(Table::Session, &[3; 32], b"", b"hello")
            .unwrap();
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..=NONCE_LEN]).unwrap();
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let aad = associated_data(Table::Session, &[3; 32], b"");
        assert_eq!(
            raw.open_in_place(nonce, Aad::from(aad), &mut body).unwrap(),
            b"hello"
        );
    }
}
