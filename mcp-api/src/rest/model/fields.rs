//! How the fields of the REST model are read and described: lenient JSON integers, the
//! defaults, and the JSON Schemas of fields whose limits the derives cannot state.

use std::fmt;

use schemars::{Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde_json::Value;

use crate::store::{Limits, MemoryState};

/// A JSON integer as JSON Schema defines it: any number without a fractional part, so
/// `2.0` is the integer 2 (serde's integer types refuse it).
struct WholeNumber(i64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(WholeNumberVisitor)
            .map(WholeNumber)
    }
}

struct WholeNumberVisitor;

impl Visitor<'_> for WholeNumberVisitor {
    type Value = i64;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a 64-bit integer")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
        Ok(value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
        i64::try_from(value).map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<i64, E> {
        // 2^63 is exact as f64. serde_json hands integer literals beyond the i64 and u64
        // ranges over as floats rounded to at least 2^63 in magnitude, so only whole numbers
        // strictly inside (-2^63, 2^63) are taken: they fit an i64, and the cast neither
        // truncates nor saturates.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if value.fract() == 0.0 && value > -LIMIT && value < LIMIT {
            #[allow(clippy::cast_possible_truncation)]
            return Ok(value as i64);
        }
        Err(E::invalid_value(Unexpected::Float(value), &self))
    }
}

/// A page number or size in a JSON body (see [`WholeNumber`]).
pub(super) fn json_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let WholeNumber(value) = WholeNumber::deserialize(deserializer)?;
    u32::try_from(value).map_err(|_| {
        de::Error::invalid_value(Unexpected::Signed(value), &"an unsigned 32-bit integer")
    })
}

/// An optional Unix second in a JSON body (see [`WholeNumber`]).
pub(super) fn json_option_i64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    Ok(Option::<WholeNumber>::deserialize(deserializer)?.map(|WholeNumber(value)| value))
}

/// The default page number.
pub(super) fn first_page() -> u32 {
    1
}

/// The default page size of listings (OpenMemory's).
pub(super) fn default_page_size() -> u32 {
    10
}

/// The default number of related memories (OpenMemory's fixed 5).
pub(super) fn default_related_size() -> u32 {
    5
}

/// A length as a JSON count.
pub(super) fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// The states a listed memory can be in (deleted memories are never shown).
const VISIBLE_STATES: [MemoryState; 3] = [
    MemoryState::Active,
    MemoryState::Paused,
    MemoryState::Archived,
];

/// What every text a memory holds must match: at least one character that is not white
/// space (Unicode `White_Space`, what Rust's `str::trim` removes) and no NUL character.
pub(super) const TEXT_PATTERN: &str = "^[^\\x00]*[^\\x00\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00]*$";

/// What a new category must match: no control character (Unicode `Cc`, refused before the
/// store trims), and at least one character that is not white space.
pub(super) const CATEGORY_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$";

/// The id form the documents name: a hyphenated UUID of version 7 (other UUID text forms
/// are accepted too).
pub(super) const MEMORY_ID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// The limits the schemas state: the store's defaults, which `mcp-server` runs with.
pub(crate) fn documented_limits() -> Limits {
    Limits::default()
}

/// The most entries of a comma-separated category list, as a pattern.
pub(super) fn comma_list_pattern(max_items: usize) -> String {
    format!("^[^,]*(,[^,]*){{0,{}}}$", max_items.saturating_sub(1))
}

pub(super) fn page_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "format": "uint32",
        "minimum": 1,
        "maximum": u32::MAX,
        "default": first_page(),
    })
}

pub(super) fn page_size_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "format": "uint32",
        "minimum": 1,
        "maximum": documented_limits().max_page_size,
        "default": default_page_size(),
    })
}

pub(super) fn related_size_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "format": "uint32",
        "minimum": 1,
        "maximum": documented_limits().max_search_limit,
        "default": default_related_size(),
    })
}

pub(super) fn unix_seconds_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "format": "int64",
        "minimum": i64::MIN,
        "maximum": i64::MAX,
    })
}

pub(super) fn nullable_unix_seconds_schema(generator: &mut SchemaGenerator) -> Schema {
    nullable(unix_seconds_schema(generator))
}

pub(super) fn text_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": documented_limits().max_text_bytes,
        "pattern": TEXT_PATTERN,
    })
}

pub(super) fn search_query_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": documented_limits().max_query_bytes,
    })
}

pub(super) fn nullable_search_query_schema(generator: &mut SchemaGenerator) -> Schema {
    nullable(search_query_schema(generator))
}

pub(super) fn comma_list_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": comma_list_pattern(documented_limits().max_categories),
    })
}

pub(super) fn new_categories_schema(_: &mut SchemaGenerator) -> Schema {
    let limits = documented_limits();
    json_schema!({
        "type": ["array", "null"],
        "maxItems": limits.max_categories,
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": limits.max_category_chars,
            "pattern": CATEGORY_PATTERN,
        },
    })
}

pub(super) fn category_filter_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["array", "null"],
        "maxItems": documented_limits().max_categories,
        "items": {"type": "string"},
    })
}

pub(super) fn app_ids_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["array", "null"],
        "maxItems": 1,
        "items": {"type": "string"},
    })
}

pub(super) fn ignored_string_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "null"]})
}

pub(super) fn ignored_bool_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["boolean", "null"]})
}

pub(super) fn nullable_bool_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["boolean", "null"], "default": false})
}

/// `schema` with `null` added to its type (for `Option` body fields, which take `null`).
fn nullable(mut schema: Schema) -> Schema {
    if let Some(object) = schema.as_object_mut()
        && let Some(Value::String(kind)) = object.get("type").cloned()
    {
        object.insert(
            "type".to_owned(),
            Value::Array(vec![Value::String(kind), Value::from("null")]),
        );
    }
    schema
}

pub(super) fn memory_id_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "uuid",
        // With the length fixed, Python's `$` (which also matches before a final newline)
        // cannot let "<id>\n" through.
        "minLength": 36,
        "maxLength": 36,
        "pattern": MEMORY_ID_PATTERN,
        "description": "A memory id: a version 7 UUID.",
    })
}

pub(super) fn memory_ids_schema(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": documented_limits().max_batch,
        "items": memory_id_schema(generator),
    })
}

pub(super) fn memory_state_schema(_: &mut SchemaGenerator) -> Schema {
    let states: Vec<&str> = VISIBLE_STATES.iter().map(|state| state.as_str()).collect();
    json_schema!({
        "type": "string",
        "enum": states,
    })
}
