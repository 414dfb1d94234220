//! [`IdGenerator`]: memory ids (UUIDv7) from the store's clock, for every store.

use uuid::{ContextV7, Timestamp};

use super::MemoryId;

/// Generates monotonic UUIDv7 memory ids from the store's clock.
#[derive(Default)]
pub(crate) struct IdGenerator {
    context: ContextV7,
}

impl IdGenerator {
    /// A new id for a memory created at `now_unix_ms`. Ids generated in the
    /// same millisecond still sort in generation order.
    pub(crate) fn next(&self, now_unix_ms: i64) -> MemoryId {
        let millis = u64::try_from(now_unix_ms).unwrap_or(0);
        let seconds = millis / 1000;
        // Below 1_000_000_000, so it fits: (millis % 1000) * 1_000_000 < 10^9 < u32::MAX.
        let nanos = u32::try_from((millis % 1000) * 1_000_000).unwrap_or(0);
        MemoryId::new_v7(Timestamp::from_unix(&self.context, seconds, nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_increase_within_one_millisecond() {
        let ids = IdGenerator::default();
        let generated: Vec<MemoryId> = (0..1000).map(|_| ids.next(1_700_000_000_123)).collect();
        assert!(
            generated
                .iter()
                .all(|id| id.as_uuid().get_version_num() == 7)
        );
        assert!(generated.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn ids_carry_the_clock_time() {
        let id = IdGenerator::default().next(1_700_000_000_123);
        let (seconds, nanos) = id.as_uuid().get_timestamp().unwrap().to_unix();
        assert_eq!((seconds, nanos), (1_700_000_000, 123_000_000));
    }

    #[test]
    fn ids_stay_monotonic_when_the_clock_goes_back() {
        let ids = IdGenerator::default();
        let later = ids.next(1_700_000_001_000);
        let earlier_clock = ids.next(1_700_000_000_000);
        assert!(earlier_clock > later);
    }

    #[test]
    fn a_clock_before_1970_reads_as_the_epoch() {
        let id = IdGenerator::default().next(-5);
        assert_eq!(id.as_uuid().get_timestamp().unwrap().to_unix().0, 0);
    }
}
