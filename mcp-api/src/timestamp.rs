//! The one timestamp convention of the APIs: every time the REST API and the MCP tools
//! show (`created_at`, `updated_at`, `accessed_at`, and the `from_date`/`to_date` filters)
//! is a JSON integer of **Unix seconds**. The store keeps Unix milliseconds
//! ([`Memory::created_at`](crate::Memory::created_at)); [`unix_seconds`] is the one
//! conversion.

/// Unix milliseconds to Unix seconds, rounding down (towards the past).
pub(crate) fn unix_seconds(millis: i64) -> i64 {
    millis.div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_down_to_seconds() {
        assert_eq!(unix_seconds(1_700_000_000_999), 1_700_000_000);
        assert_eq!(unix_seconds(0), 0);
        assert_eq!(unix_seconds(-1), -1);
    }
}
