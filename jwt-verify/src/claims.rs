//! Claims: deserialized into the caller's type and checked in the same single JSON pass.
//!
//! The caller's `Deserialize` impl is fed through an intercepting map: every member name is
//! checked for duplicates, and the registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`,
//! `iat`, `jti`) are parsed by us with their required JSON types (no `"exp": "123"`, no
//! `"iss": ["a"]`, no fractional or negative dates) and then handed to the caller's type
//! from the parsed value, so each is read once whatever the caller's type says.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::value::{
    BorrowedStrDeserializer, CowStrDeserializer, SeqDeserializer, StringDeserializer,
    U64Deserializer,
};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind};
use crate::json::{JsonStr, SeenNames};
use crate::policy::Policy;
use crate::status_claim::{self, StatusRef};

/// Claims that passed the checks, with what the verifier keeps from them.
pub(crate) struct Decoded<C> {
    pub(crate) claims: C,
    pub(crate) exp: u64,
    /// The `status` claim, when status lists are checked and the token has one.
    pub(crate) status: Option<StatusRef>,
}

/// Deserializes `payload` into `C` and validates the registered claims against `policy` at
/// `now` (Unix seconds). With `capture_status`, the `status` claim is also parsed (and
/// refused when malformed), still in the one pass.
pub(crate) fn decode_claims<C: DeserializeOwned>(
    payload: &[u8],
    policy: &Policy,
    now: u64,
    capture_status: bool,
) -> Result<Decoded<C>, Error> {
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return Err(Error::new(
            ErrorKind::Malformed,
            "claims are not a json object",
        ));
    }
    // Validated once here, so the parser need not check each string again.
    let Ok(json) = std::str::from_utf8(payload) else {
        return Err(Error::new(ErrorKind::Malformed, "claims are not utf-8"));
    };
    let mut registered = Registered {
        capture_status,
        ..Registered::default()
    };
    let mut de = serde_json::Deserializer::from_str(json);
    let result = C::deserialize(Intercept {
        inner: &mut de,
        registered: &mut registered,
    });
    if registered.duplicate {
        return Err(Error::new(ErrorKind::Malformed, "duplicate claim name"));
    }
    if let Some(detail) = registered.invalid {
        return Err(invalid(detail));
    }
    let Ok(claims) = result else {
        // The caller's type stopped early: rescan for the registered claims alone, so a
        // missing or mistyped `iss`/`exp`/… is reported as such rather than as a type error.
        decode_claims::<de::IgnoredAny>(payload, policy, now, capture_status)?;
        return Err(Error::new(
            ErrorKind::Claims,
            "claims do not deserialize into the requested type",
        ));
    };
    de.end()
        .map_err(|_| Error::new(ErrorKind::Malformed, "trailing data after the claims"))?;
    if !registered.finished {
        return Err(Error::new(
            ErrorKind::Claims,
            "claims type did not read the whole claims object",
        ));
    }
    let exp = registered.validate(policy, now)?;
    Ok(Decoded {
        claims,
        exp,
        status: registered.status,
    })
}

/// The registered claims seen so far, parsed.
#[derive(Default)]
struct Registered<'de> {
    iss: Option<Cow<'de, str>>,
    aud: Option<Audiences<'de>>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    /// Whether `status` is parsed by us (status lists are checked).
    capture_status: bool,
    status: Option<StatusRef>,
    /// Registered claims seen, one bit per [`Field`].
    seen_registered: u8,
    /// Other member names seen.
    seen: SeenNames<'de>,
    finished: bool,
    duplicate: bool,
    /// Set when a registered claim had the wrong JSON type.
    invalid: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Field {
    Iss,
    Sub,
    Aud,
    Exp,
    Nbf,
    Iat,
    Jti,
    /// Only when status lists are checked.
    Status,
}

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "iss" => Field::Iss,
            "sub" => Field::Sub,
            "aud" => Field::Aud,
            "exp" => Field::Exp,
            "nbf" => Field::Nbf,
            "iat" => Field::Iat,
            "jti" => Field::Jti,
            "status" => Field::Status,
            _ => return None,
        })
    }

    /// What is wrong when the value has another JSON type.
    fn type_error(self) -> &'static str {
        match self {
            Field::Iss => "iss is not a string",
            Field::Sub => "sub is not a string",
            Field::Jti => "jti is not a string",
            Field::Aud => "aud is neither a string nor a non-empty array of strings",
            Field::Exp => "exp is not a non-negative integer",
            Field::Nbf => "nbf is not a non-negative integer",
            Field::Iat => "iat is not a non-negative integer",
            Field::Status => "status is not an object with status_list idx and uri",
        }
    }
}

fn invalid(detail: &'static str) -> Error {
    Error::new(ErrorKind::InvalidClaim, detail)
}

impl Registered<'_> {
    /// Records `field`; returns `false` if it was seen before.
    fn mark_seen(&mut self, field: Field) -> bool {
        let bit = 1 << field as u8;
        let first_time = self.seen_registered & bit == 0;
        self.seen_registered |= bit;
        first_time
    }

    fn validate(&self, policy: &Policy, now: u64) -> Result<u64, Error> {
        let missing = |detail| Error::new(ErrorKind::MissingClaim, detail);

        let iss = self.iss.as_ref().ok_or(missing("token has no iss"))?;
        if !policy.issuers.iter().any(|accepted| **accepted == **iss) {
            return Err(Error::new(
                ErrorKind::WrongIssuer,
                "iss is not an accepted issuer",
            ));
        }

        if policy.check_audience {
            let aud = self.aud.as_ref().ok_or(missing("token has no aud"))?;
            if !aud.contains_any(&policy.audiences) {
                return Err(Error::new(
                    ErrorKind::WrongAudience,
                    "aud holds no accepted audience",
                ));
            }
        }

        let leeway = policy.leeway_secs;
        let exp = self.exp.ok_or(missing("token has no exp"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(Error::new(ErrorKind::Expired, "token expired"));
        }
        if self.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(Error::new(
                ErrorKind::NotYetValid,
                "token not valid yet (nbf)",
            ));
        }
        if self.iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return Err(Error::new(
                ErrorKind::IssuedInFuture,
                "token issued in the future (iat)",
            ));
        }
        Ok(exp)
    }
}

/// `aud`: one string or a non-empty array of strings.
enum Audiences<'de> {
    One(Cow<'de, str>),
    Many(Vec<Cow<'de, str>>),
}

impl Audiences<'_> {
    fn contains_any(&self, accepted: &[String]) -> bool {
        let is_accepted = |aud: &Cow<'_, str>| accepted.iter().any(|a| *a == **aud);
        match self {
            Audiences::One(aud) => is_accepted(aud),
            Audiences::Many(list) => list.iter().any(is_accepted),
        }
    }
}

impl<'de> de::Deserialize<'de> for Audiences<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AudiencesVisitor)
    }
}

struct AudiencesVisitor;

impl<'de> Visitor<'de> for AudiencesVisitor {
    type Value = Audiences<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a non-empty array of strings")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Audiences::One(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Audiences::One(Cow::Owned(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut list = Vec::new();
        while let Some(JsonStr(item)) = seq.next_element::<JsonStr<'de>>()? {
            list.push(item);
        }
        if list.is_empty() {
            return Err(de::Error::custom("aud is an empty array"));
        }
        Ok(Audiences::Many(list))
    }
}

/// RFC 7519 NumericDate, restricted to what real issuers send: a non-negative JSON integer
/// that fits 64 bits (no string, fraction, exponent or sign).
struct NumericDate(u64);

impl<'de> de::Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumericDateVisitor)
    }
}

struct NumericDateVisitor;

impl Visitor<'_> for NumericDateVisitor {
    type Value = NumericDate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(NumericDate(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(NumericDate)
            .map_err(|_| de::Error::custom("negative date"))
    }
}

/// A `Deserializer` that hands the caller's visitor an intercepting map.
struct Intercept<'a, 'de, D> {
    inner: D,
    registered: &'a mut Registered<'de>,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Intercept<'_, 'de, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(InterceptVisitor {
            visitor,
            registered: self.registered,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct InterceptVisitor<'a, 'de, V> {
    visitor: V,
    registered: &'a mut Registered<'de>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for InterceptVisitor<'_, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_map(InterceptMap {
            map,
            registered: self.registered,
            pending: None,
        })
    }
}

struct InterceptMap<'a, 'de, A> {
    map: A,
    registered: &'a mut Registered<'de>,
    pending: Option<Field>,
}

impl<'de, A: MapAccess<'de>> InterceptMap<'_, 'de, A> {
    /// Parses one registered claim with its required type; a type error is remembered (so
    /// the caller gets `InvalidClaim`) and stops deserialization.
    fn capture<T: de::Deserialize<'de>>(&mut self, field: Field) -> Result<T, A::Error> {
        self.map
            .next_value::<T>()
            .inspect_err(|_| self.registered.invalid = Some(field.type_error()))
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for InterceptMap<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(JsonStr(name)) = self.map.next_key::<JsonStr<'de>>()? else {
            self.registered.finished = true;
            return Ok(None);
        };
        self.pending = Field::from_name(&name)
            .filter(|field| !matches!(field, Field::Status) || self.registered.capture_status);
        let first_time = match self.pending {
            Some(field) => self.registered.mark_seen(field),
            None => self.registered.seen.insert(name.clone()),
        };
        if !first_time {
            self.registered.duplicate = true;
            return Err(de::Error::custom("duplicate claim name"));
        }
        match name {
            Cow::Borrowed(name) => seed.deserialize(BorrowedStrDeserializer::new(name)),
            Cow::Owned(name) => seed.deserialize(StringDeserializer::new(name)),
        }
        .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let Some(field) = self.pending.take() else {
            return self.map.next_value_seed(seed);
        };
        match field {
            Field::Exp | Field::Nbf | Field::Iat => {
                let NumericDate(date) = self.capture(field)?;
                let slot = match field {
                    Field::Exp => &mut self.registered.exp,
                    Field::Nbf => &mut self.registered.nbf,
                    _ => &mut self.registered.iat,
                };
                *slot = Some(date);
                seed.deserialize(Present(U64Deserializer::new(date)))
            }
            Field::Iss | Field::Sub | Field::Jti => {
                let JsonStr(text) = self.capture(field)?;
                let value = seed.deserialize(Present(CowStrDeserializer::new(text.clone())));
                if matches!(field, Field::Iss) {
                    self.registered.iss = Some(text);
                }
                value
            }
            Field::Aud => {
                let audiences: Audiences<'de> = self.capture(field)?;
                let value = match &audiences {
                    Audiences::One(one) => {
                        seed.deserialize(Present(CowStrDeserializer::new(one.clone())))
                    }
                    Audiences::Many(list) => seed.deserialize(Present(SeqDeserializer::new(
                        list.iter().cloned().map(CowStrDeserializer::new),
                    ))),
                };
                self.registered.aud = Some(audiences);
                value
            }
            Field::Status => {
                let raw: &'de RawValue = self.capture(field)?;
                match status_claim::parse_status_claim(raw.get()) {
                    Ok(status) => self.registered.status = Some(status),
                    Err(detail) => {
                        self.registered.invalid = Some(detail);
                        return Err(de::Error::custom(detail));
                    }
                }
                // The caller's type reads the same JSON text.
                seed.deserialize(RawReplay(raw.get()))
                    .map_err(de::Error::custom)
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// Hands a JSON value already read (and so known to be well-formed) to the caller's type.
/// A type that ignores it costs nothing; any other reads it with serde_json as usual.
struct RawReplay<'de>(&'de str);

macro_rules! replay {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            serde_json::Deserializer::from_str(self.0).$method(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for RawReplay<'de> {
    type Error = serde_json::Error;

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    replay! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        serde_json::Deserializer::from_str(self.0).deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        serde_json::Deserializer::from_str(self.0).deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        serde_json::Deserializer::from_str(self.0).deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        serde_json::Deserializer::from_str(self.0).deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        serde_json::Deserializer::from_str(self.0).deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        serde_json::Deserializer::from_str(self.0).deserialize_enum(name, variants, visitor)
    }
}

/// A value that is present: `Option<T>` fields see `Some`, everything else is forwarded
/// (serde's value deserializers would refuse to fill an `Option`).
struct Present<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Present<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_some(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
