//! Unit tests of `model.rs`.

use serde_json::json;

use super::fields::{CATEGORY_PATTERN, MEMORY_ID_PATTERN, TEXT_PATTERN, comma_list_pattern};
use super::*;
use crate::store::Limits;

#[test]
fn body_integers_may_be_written_as_whole_floats() {
    let request: FilterMemoriesRequest = serde_json::from_value(
        json!({"page": 2.0, "size": 10, "from_date": -5.0, "to_date": 1_700_000_000.0}),
    )
    .unwrap();
    assert_eq!((request.page, request.size), (2, 10));
    assert_eq!(request.from_date, Some(-5));
    assert_eq!(request.to_date, Some(1_700_000_000));
    let nulls: FilterMemoriesRequest = serde_json::from_value(json!({"from_date": null})).unwrap();
    assert_eq!(nulls.from_date, None);
    for bad in [
        json!({"page": 1.5}),
        json!({"page": -1}),
        json!({"size": 4_294_967_296_u64}),
        json!({"from_date": 9.3e18}),
        json!({"to_date": -9_223_372_036_854_775_809.0}),
        json!({"to_date": "1"}),
        json!({"to_date": 1e300}),
    ] {
        assert!(
            serde_json::from_value::<FilterMemoriesRequest>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

/// Every character class the rules care about, alone and around a letter.
fn samples() -> Vec<String> {
    let mut chars: Vec<char> = (0_u32..0x300).filter_map(char::from_u32).collect();
    chars.extend([
        '\u{1680}', '\u{180e}', '\u{2000}', '\u{200a}', '\u{200b}', '\u{2028}', '\u{2029}',
        '\u{202f}', '\u{205f}', '\u{3000}', '\u{feff}', 'é', '字',
    ]);
    let mut samples = vec![String::new()];
    for c in chars {
        samples.push(c.to_string());
        samples.push(format!("{c}{c}"));
        samples.push(format!("a{c}"));
        samples.push(format!("{c}a{c}"));
    }
    samples
}

#[test]
fn the_text_pattern_is_the_store_text_rule() {
    let pattern = regex::Regex::new(TEXT_PATTERN).unwrap();
    let limits = Limits::default();
    for sample in samples() {
        assert_eq!(
            pattern.is_match(&sample),
            limits.check_text(&sample).is_ok(),
            "{sample:?}"
        );
    }
}

#[test]
fn the_category_pattern_is_the_store_category_rule() {
    let pattern = regex::Regex::new(CATEGORY_PATTERN).unwrap();
    let limits = Limits::default();
    let mut samples = samples();
    samples.extend(["\ta\n", " a b ", "\ta\tb\t", " \u{85}a\u{3000}"].map(str::to_owned));
    for sample in samples {
        let accepted = limits.normalise_categories(vec![sample.clone()]).is_ok()
            && super::super::handlers::check_new_categories(std::slice::from_ref(&sample)).is_ok();
        assert_eq!(pattern.is_match(&sample), accepted, "{sample:?}");
    }
}

#[test]
fn the_memory_id_pattern_accepts_exactly_hyphenated_v7_ids() {
    let pattern = regex::Regex::new(MEMORY_ID_PATTERN).unwrap();
    for (id, v7) in [
        ("01890a5d-ac96-774b-bcce-b302099a8057", true),
        ("01890A5D-AC96-774B-BCCE-B302099A8057", true),
        ("01890a5d-ac96-474b-bcce-b302099a8057", false),
        ("01890a5d-ac96-774b-bcce-b302099a805", false),
    ] {
        assert_eq!(pattern.is_match(id), v7, "{id}");
        assert_eq!(id.parse::<MemoryId>().is_ok(), v7, "{id}");
    }
}

#[test]
fn documented_limits_are_the_store_defaults() {
    let limits = documented_limits();
    assert_eq!(limits, Limits::default());
    assert_eq!(comma_list_pattern(32), "^[^,]*(,[^,]*){0,31}$");
}
