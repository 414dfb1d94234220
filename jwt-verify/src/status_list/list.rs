//! The status list itself: `bits` per referenced token, packed least significant bit first,
//! ZLIB-compressed and base64url-encoded in the `lst` member (draft-ietf-oauth-status-list
//! §4.1).

use std::fmt;
use std::io::Read;

use flate2::read::ZlibDecoder;

use crate::base64url;

/// A decoded status list: one `bits`-wide status per index.
///
/// ```
/// use jwks_verify::status_list::StatusList;
///
/// // The draft's bits=1 example: statuses 1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1.
/// let list = StatusList::from_lst(1, "eNrbuRgAAhcBXQ", 1024)?;
/// assert_eq!(list.len(), 16);
/// assert_eq!(list.status(0), Some(1));
/// assert_eq!(list.status(1), Some(0));
/// assert_eq!(list.status(16), None);
/// # Ok::<(), jwks_verify::status_list::StatusListError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    bytes: Box<[u8]>,
}

/// Why a `status_list` member was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusListError {
    /// `bits` is not 1, 2, 4 or 8.
    Bits,
    /// `lst` is not canonical unpadded base64url.
    Base64,
    /// `lst` is not a complete ZLIB (RFC 1950) stream.
    Zlib,
    /// The decompressed list is larger than allowed (a decompression bomb, or a list too
    /// large to hold).
    TooLarge,
}

impl fmt::Display for StatusListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatusListError::Bits => "status list bits is not 1, 2, 4 or 8",
            StatusListError::Base64 => "status list lst is not base64url",
            StatusListError::Zlib => "status list lst is not a zlib stream",
            StatusListError::TooLarge => "status list larger than the decompressed size limit",
        })
    }
}

impl std::error::Error for StatusListError {}

impl StatusList {
    /// Decodes `lst` (base64url of a ZLIB stream) holding `bits`-wide statuses, refusing a
    /// list that inflates to more than `max_bytes` (checked while inflating, so a
    /// decompression bomb costs at most `max_bytes` of memory).
    pub fn from_lst(bits: u8, lst: &str, max_bytes: usize) -> Result<Self, StatusListError> {
        check_bits(bits)?;
        let compressed = base64url::decode_to_vec(lst.as_bytes()).ok_or(StatusListError::Base64)?;
        let mut bytes = Vec::new();
        let limit = u64::try_from(max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        ZlibDecoder::new(compressed.as_slice())
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|_| StatusListError::Zlib)?;
        if bytes.len() > max_bytes {
            return Err(StatusListError::TooLarge);
        }
        Ok(StatusList {
            bits,
            bytes: bytes.into_boxed_slice(),
        })
    }

    /// A list from its uncompressed bytes (e.g. for tests or a local issuer).
    pub fn from_bytes(bits: u8, bytes: impl Into<Box<[u8]>>) -> Result<Self, StatusListError> {
        check_bits(bits)?;
        Ok(StatusList {
            bits,
            bytes: bytes.into(),
        })
    }

    /// Bits per status: 1, 2, 4 or 8.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// How many statuses the list holds.
    pub fn len(&self) -> u64 {
        let bytes = u64::try_from(self.bytes.len()).unwrap_or(u64::MAX);
        bytes.saturating_mul(8) / u64::from(self.bits)
    }

    /// The packed statuses.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the list holds no status at all.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The status at `index` (0 is VALID, 1 INVALID, 2 SUSPENDED, 3 and up
    /// application-specific), or `None` past the end of the list.
    ///
    /// Statuses are packed from the least significant bit of each byte: index `i` is the
    /// `bits` bits starting at bit `i * bits % 8` of byte `i * bits / 8`.
    #[inline]
    pub fn status(&self, index: u64) -> Option<u8> {
        let position = index.checked_mul(u64::from(self.bits))?;
        let byte = *self.bytes.get(usize::try_from(position / 8).ok()?)?;
        // `position % 8` is below 8, and `bits` divides 8, so the status fits the byte.
        let shift = u32::try_from(position % 8).ok()?;
        let mask = u8::MAX >> (8 - u32::from(self.bits));
        Some((byte >> shift) & mask)
    }
}

fn check_bits(bits: u8) -> Result<(), StatusListError> {
    if matches!(bits, 1 | 2 | 4 | 8) {
        Ok(())
    } else {
        Err(StatusListError::Bits)
    }
}

impl fmt::Debug for StatusList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusList")
            .field("bits", &self.bits)
            .field("len", &self.len())
            .finish()
    }
}

/// `bytes` as an `lst` value: ZLIB-compressed, base64url-encoded.
#[cfg(test)]
pub(crate) fn lst_of(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    base64url::encode(&encoder.finish().unwrap())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::*;

    use super::lst_of;

    fn statuses(list: &StatusList) -> Vec<u8> {
        (0..list.len()).map(|i| list.status(i).unwrap()).collect()
    }

    /// draft-ietf-oauth-status-list §4.1, the `bits: 1` example.
    #[test]
    fn spec_vector_one_bit() {
        let list = StatusList::from_lst(1, "eNrbuRgAAhcBXQ", 1024).unwrap();
        assert_eq!(list.bytes.as_ref(), [0xB9, 0xA3]);
        assert_eq!(
            statuses(&list),
            [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
        );
        assert_eq!(list.status(16), None);
    }

    /// draft-ietf-oauth-status-list §4.1, the `bits: 2` example.
    #[test]
    fn spec_vector_two_bits() {
        let list = StatusList::from_lst(2, "eNo76fITAAPfAgc", 1024).unwrap();
        assert_eq!(list.bytes.as_ref(), [0xC9, 0x44, 0xF9]);
        assert_eq!(statuses(&list), [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]);
    }

    #[test]
    fn four_and_eight_bits_read_low_nibble_first() {
        let list = StatusList::from_lst(4, &lst_of(&[0x21, 0xF3]), 1024).unwrap();
        assert_eq!(statuses(&list), [1, 2, 3, 15]);
        let list = StatusList::from_lst(8, &lst_of(&[0, 7, 255]), 1024).unwrap();
        assert_eq!(statuses(&list), [0, 7, 255]);
        assert_eq!(list.status(u64::MAX), None, "no overflow past the end");
    }

    #[test]
    fn bits_other_than_1_2_4_8_are_refused() {
        for bits in [0, 3, 5, 6, 7, 9, 16, 255] {
            assert_eq!(
                StatusList::from_lst(bits, "eNrbuRgAAhcBXQ", 1024).unwrap_err(),
                StatusListError::Bits
            );
        }
    }

    #[test]
    fn attack_zip_bomb_is_refused_while_inflating() {
        // 64 MiB of zeros compresses to about 64 KiB.
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..64 {
            encoder.write_all(&zeros).unwrap();
        }
        let lst = base64url::encode(&encoder.finish().unwrap());
        assert!(lst.len() < 200_000);
        assert_eq!(
            StatusList::from_lst(1, &lst, 16 * 1024 * 1024).unwrap_err(),
            StatusListError::TooLarge
        );
        // Exactly at the limit is fine.
        assert_eq!(
            StatusList::from_lst(1, &lst_of(&[0; 1000]), 1000)
                .unwrap()
                .len(),
            8000
        );
        assert_eq!(
            StatusList::from_lst(1, &lst_of(&[0; 1001]), 1000).unwrap_err(),
            StatusListError::TooLarge
        );
    }

    #[test]
    fn broken_encodings_are_refused() {
        assert_eq!(
            StatusList::from_lst(1, "eNrbuRgAAhcBXQ==", 1024).unwrap_err(),
            StatusListError::Base64
        );
        assert_eq!(
            StatusList::from_lst(1, "not base64!", 1024).unwrap_err(),
            StatusListError::Base64
        );
        // Raw DEFLATE without the ZLIB header, and a truncated stream.
        assert_eq!(
            StatusList::from_lst(1, &base64url::encode(&[0x4b, 0x04, 0x00]), 1024).unwrap_err(),
            StatusListError::Zlib
        );
        let full = base64url::decode_to_vec(b"eNrbuRgAAhcBXQ").unwrap();
        let truncated = base64url::encode(&full[..full.len() - 5]);
        assert!(StatusList::from_lst(1, &truncated, 1024).is_err());
    }
}
