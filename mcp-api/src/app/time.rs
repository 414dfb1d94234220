//! Dates for people: Unix milliseconds shown in UTC (the page's script shows them in the
//! reader's own time zone), and `YYYY-MM-DD` form values read back.

/// Milliseconds in a day.
pub(super) const DAY_MS: i64 = 86_400_000;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The civil date of a day number (days since 1970-01-01), by Howard Hinnant's algorithm.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number of a civil date (the inverse of [`civil`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-06 07:15 UTC`.
pub(super) fn format_time(ms: i64) -> String {
    let (year, month, day) = civil(ms.div_euclid(DAY_MS));
    let minutes = ms.rem_euclid(DAY_MS) / 60_000;
    format!(
        "{year}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

/// `2026-12-06T07:15:00Z`, for `<time datetime>`.
pub(super) fn iso_time(ms: i64) -> String {
    let (year, month, day) = civil(ms.div_euclid(DAY_MS));
    let seconds = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// `2026-12-06`.
pub(super) fn format_day(ms: i64) -> String {
    let (year, month, day) = civil(ms.div_euclid(DAY_MS));
    format!("{year}-{month:02}-{day:02}")
}

/// `Dec 6`, for chart axes.
pub(super) fn short_day(ms: i64) -> String {
    let (_, month, day) = civil(ms.div_euclid(DAY_MS));
    let name = MONTHS.get(month as usize - 1).copied().unwrap_or("");
    format!("{name} {day}")
}

/// The UTC midnight starting the day of a `YYYY-MM-DD` value, in Unix milliseconds.
pub(super) fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // 31 February and the like do not round-trip.
    (civil(days) == (year, month, day)).then_some(days * DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        // 2026-12-06T07:15:53Z
        let ms = 1_796_541_353_000;
        assert_eq!(format_time(ms), "2026-12-06 07:15 UTC");
        assert_eq!(iso_time(ms), "2026-12-06T07:15:53Z");
        assert_eq!(format_day(ms), "2026-12-06");
        assert_eq!(short_day(ms), "Dec 6");
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn parses_days_and_refuses_impossible_ones() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2000-02-29"), Some(951_782_400_000));
        for bad in [
            "2001-02-29",
            "2026-13-01",
            "2026-00-10",
            "x",
            "2026-1",
            "",
            "0000-01-01",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}
