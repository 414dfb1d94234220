//! Query strings (`application/x-www-form-urlencoded`) into typed parameters with serde.
//!
//! A small deserializer instead of a dependency: keys and values are percent-decoded
//! (`+` is a space) and must be UTF-8; a value is parsed as the number, boolean, enum or
//! string its field asks for. Errors name the parameter at fault. Repeated keys reach the
//! derived `Deserialize` as duplicates, which it refuses.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode_str;
use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::forward_to_deserialize_any;

/// Parses a raw query string (without `?`) into `T`.
pub(crate) fn from_query_str<T: DeserializeOwned>(raw: &str) -> Result<T, QueryError> {
    let pairs = decode_pairs(raw)?;
    T::deserialize(QueryDeserializer { pairs })
}

/// Why a query string does not fit its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    /// The parameter at fault, if known.
    pub(crate) field: Option<String>,
    /// What is wrong.
    pub(crate) message: String,
}

impl QueryError {
    fn in_field(mut self, field: &str) -> Self {
        if self.field.is_none() {
            self.message = format!("invalid query parameter `{field}`: {}", self.message);
            self.field = Some(field.to_owned());
        }
        self
    }

    fn with_field(field: &str, message: String) -> Self {
        QueryError {
            field: Some(field.to_owned()),
            message,
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

impl de::Error for QueryError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        QueryError {
            field: None,
            message: message.to_string(),
        }
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        QueryError::with_field(field, format!("unknown query parameter `{field}`"))
    }

    fn missing_field(field: &'static str) -> Self {
        QueryError::with_field(field, format!("missing query parameter `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        QueryError::with_field(
            field,
            format!("query parameter `{field}` given more than once"),
        )
    }
}

/// Splits and percent-decodes `key=value` pairs; empty pieces (`a=1&&b=2`) are skipped.
fn decode_pairs(raw: &str) -> Result<Vec<(String, String)>, QueryError> {
    raw.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            let key = percent_decode(key).ok_or_else(not_utf8)?;
            let value = percent_decode(value).ok_or_else(|| not_utf8().in_field(&key))?;
            Ok((key, value))
        })
        .collect()
}

fn not_utf8() -> QueryError {
    de::Error::custom("query parameters must be percent-encoded UTF-8")
}

/// Form decoding: `+` is a space, `%XX` a byte; a `%` not followed by two hex digits is
/// kept as is. `None` if the bytes are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// The whole query: a map of parameters.
struct QueryDeserializer {
    pairs: Vec<(String, String)>,
}

impl<'de> de::Deserializer<'de> for QueryDeserializer {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_map(QueryPairs {
            pairs: self.pairs.into_iter(),
            pending: None,
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct QueryPairs {
    pairs: std::vec::IntoIter<(String, String)>,
    /// The pair whose key was just handed out.
    pending: Option<(String, String)>,
}

impl<'de> MapAccess<'de> for QueryPairs {
    type Error = QueryError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, QueryError> {
        let Some((key, value)) = self.pairs.next() else {
            return Ok(None);
        };
        let deserializer: StringDeserializer<QueryError> = key.clone().into_deserializer();
        self.pending = Some((key, value));
        seed.deserialize(deserializer).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, QueryError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("query value requested before its key"));
        };
        seed.deserialize(QueryValue(value))
            .map_err(|error| error.in_field(&key))
    }
}

/// One parameter's value, parsed as its field asks.
struct QueryValue(String);

macro_rules! parse_number {
    ($($method:ident => $visit:ident: $ty:ty, $what:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
                match self.0.parse::<$ty>() {
                    Ok(number) => visitor.$visit(number),
                    Err(_) => Err(de::Error::custom(concat!("expected ", $what))),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for QueryValue {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_string(self.0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        match self.0.as_str() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(de::Error::custom("expected true or false")),
        }
    }

    parse_number! {
        deserialize_u8 => visit_u8: u8, "a small unsigned integer";
        deserialize_u16 => visit_u16: u16, "an unsigned integer";
        deserialize_u32 => visit_u32: u32, "an unsigned 32-bit integer";
        deserialize_u64 => visit_u64: u64, "an unsigned integer";
        deserialize_i8 => visit_i8: i8, "a small integer";
        deserialize_i16 => visit_i16: i16, "an integer";
        deserialize_i32 => visit_i32: i32, "a 32-bit integer";
        deserialize_i64 => visit_i64: i64, "a 64-bit integer";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        let deserializer: StringDeserializer<QueryError> = self.0.into_deserializer();
        visitor.visit_enum(deserializer)
    }

    forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Params {
        #[serde(default)]
        page: Option<u32>,
        #[serde(default)]
        q: Option<String>,
        #[serde(default)]
        order: Option<Order>,
        #[serde(default)]
        flag: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Order {
        Asc,
        Desc,
    }

    fn parse(raw: &str) -> Result<Params, QueryError> {
        from_query_str(raw)
    }

    #[test]
    fn values_are_typed_and_decoded() {
        let params = parse("page=2&q=tea+%26+caf%C3%A9&order=desc&flag=true").unwrap();
        assert_eq!(
            params,
            Params {
                page: Some(2),
                q: Some("tea & café".to_owned()),
                order: Some(Order::Desc),
                flag: true,
            }
        );
        assert_eq!(parse("").unwrap().page, None);
        assert_eq!(parse("&&q=%zz%").unwrap().q.as_deref(), Some("%zz%"));
        assert_eq!(
            parse("q=1%2B1+%3d+2").unwrap().q.as_deref(),
            Some("1+1 = 2")
        );
        assert_eq!(parse("q=%4").unwrap().q.as_deref(), Some("%4"));
    }

    #[test]
    fn errors_name_the_parameter() {
        let error = parse("page=-1").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("page"));
        assert!(error.message.contains("unsigned"), "{}", error.message);

        let error = parse("user_id=alice").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("user_id"));

        let error = parse("page=1&page=2").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("page"));

        let error = parse("order=sideways").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("order"));

        let error = parse("q=%FF").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("q"));

        let error = parse("q=%C3").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("q"));
        let error = parse("%FF=1").unwrap_err();
        assert!(error.message.contains("UTF-8"), "{}", error.message);
    }
}
