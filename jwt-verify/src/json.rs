//! JSON helpers shared by header and claims parsing: borrowed member names and duplicate
//! detection (RFC 7515 §5.2 and RFC 7519 §4 require refusing duplicate member names).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// A member name or string value, borrowed from the input unless it held escapes.
pub(crate) struct JsonStr<'de>(pub(crate) Cow<'de, str>);

impl<'de> de::Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(JsonStrVisitor)
    }
}

struct JsonStrVisitor;

impl<'de> Visitor<'de> for JsonStrVisitor {
    type Value = JsonStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(JsonStr(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(JsonStr(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(JsonStr(Cow::Owned(v)))
    }
}

/// Member names seen so far in one JSON object: inline for typical objects, a hash set
/// for large ones or once a name held escapes, so duplicate detection never allocates for
/// a normal token and never goes quadratic for a hostile one.
pub(crate) struct SeenNames<'de> {
    /// Names borrowed from the input; plain references, so this costs nothing to create
    /// or drop.
    inline: [&'de str; INLINE_NAMES],
    len: usize,
    /// Every name seen, once there are too many to keep inline or one had to be unescaped.
    large: Option<HashSet<Cow<'de, str>>>,
}

const INLINE_NAMES: usize = 16;

impl Default for SeenNames<'_> {
    fn default() -> Self {
        SeenNames {
            inline: [""; INLINE_NAMES],
            len: 0,
            large: None,
        }
    }
}

impl<'de> SeenNames<'de> {
    /// Records `name`; returns `false` if it was seen before.
    pub(crate) fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if let Some(large) = &mut self.large {
            return large.insert(name);
        }
        if self.inline[..self.len].contains(&&*name) {
            return false;
        }
        if let Cow::Borrowed(borrowed) = name
            && self.len < INLINE_NAMES
        {
            self.inline[self.len] = borrowed;
            self.len += 1;
            return true;
        }
        let mut large: HashSet<_> = self.inline[..self.len]
            .iter()
            .map(|n| Cow::Borrowed(*n))
            .collect();
        large.insert(name);
        self.large = Some(large);
        true
    }

    /// How many distinct names were recorded.
    pub(crate) fn len(&self) -> usize {
        self.large.as_ref().map_or(self.len, HashSet::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_duplicates_small_and_large() {
        let mut seen = SeenNames::default();
        for i in 0..40 {
            assert!(seen.insert(Cow::Owned(format!("m{i}"))));
        }
        assert_eq!(seen.len(), 40);
        assert!(!seen.insert(Cow::Borrowed("m3")));
        assert!(!seen.insert(Cow::Borrowed("m39")));

        let mut small = SeenNames::default();
        assert!(small.insert(Cow::Borrowed("a")));
        assert!(!small.insert(Cow::Borrowed("a")));
        assert_eq!(small.len(), 1);

        // An unescaped name moves everything to the set; both spellings still collide.
        let mut mixed = SeenNames::default();
        assert!(mixed.insert(Cow::Borrowed("sub")));
        assert!(mixed.insert(Cow::Owned("iss".to_owned())));
        assert!(!mixed.insert(Cow::Owned("sub".to_owned())));
        assert!(!mixed.insert(Cow::Borrowed("iss")));
        assert_eq!(mixed.len(), 2);
    }

    #[test]
    fn json_str_borrows_when_it_can() {
        let plain: JsonStr<'_> = serde_json::from_str("\"abc\"").unwrap();
        assert!(matches!(plain.0, Cow::Borrowed("abc")));
        let escaped: JsonStr<'_> = serde_json::from_str("\"a\\u0062c\"").unwrap();
        assert_eq!(escaped.0, "abc");
        assert!(serde_json::from_str::<JsonStr<'_>>("12").is_err());
    }
}
