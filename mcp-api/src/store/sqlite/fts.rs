//! Turning user text into an FTS5 `MATCH` expression that cannot inject syntax.
//!
//! User text is never given to `MATCH` as is: FTS5 would read `"`, `*`, `^`,
//! `:`, `(`, `-`, `NEAR`, `AND`/`OR`/`NOT` and column filters such as
//! `owner_id:7` in it. Instead the text is split into words made of Unicode
//! letters and digits only, and each word becomes a quoted phrase (a string
//! literal to FTS5) joined with `OR`. The expression the store builds is
//!
//! ```text
//! owner_id : "<owner id>" AND text : ("word1" OR "word2" OR ...)
//! ```
//!
//! so the owner is matched inside the index and the words can only ever be
//! searched for in the text column.

use std::collections::HashSet;

/// Most distinct words of one query that are searched for; later words are
/// ignored. Bounds the work a single query can cause.
pub(super) const MAX_WORDS: usize = 64;

/// The distinct words of `text` (Unicode letters and digits), in order of
/// first appearance, at most [`MAX_WORDS`].
pub(super) fn words(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    text.split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .filter(|word| seen.insert(word.clone()))
        .take(MAX_WORDS)
        .collect()
}

/// The `MATCH` expression for any of `words` in the text of the owner's
/// memories; `None` without words.
pub(super) fn match_any_word(owner_id: i64, words: &[String]) -> Option<String> {
    if words.is_empty() {
        return None;
    }
    let phrases: Vec<String> = words.iter().map(|word| quote(word)).collect();
    Some(format!(
        "owner_id : \"{owner_id}\" AND text : ({})",
        phrases.join(" OR ")
    ))
}

/// An FTS5 string literal: the text in double quotes, inner quotes doubled.
fn quote(word: &str) -> String {
    // `words` never yields a `"`, so the doubling cannot fire today: defence in depth.
    format!("\"{}\"", word.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_everything_but_letters_and_digits() {
        assert_eq!(
            words(r#"owner_id:7 OR "x" NEAR(a b) -c* ^d (e"#),
            [
                "owner", "id", "7", "or", "x", "near", "a", "b", "c", "d", "e"
            ]
        );
    }

    #[test]
    fn keeps_unicode_words_and_deduplicates_ignoring_case() {
        assert_eq!(
            words("Café café CAFÉ naïve 東京 2024"),
            ["café", "naïve", "東京", "2024"]
        );
    }

    #[test]
    fn punctuation_only_has_no_words() {
        assert!(words(r#" "*:()-^ "#).is_empty());
        assert_eq!(match_any_word(1, &words("!!!")), None);
    }

    #[test]
    fn caps_the_number_of_words() {
        let text: Vec<String> = (0..200).map(|n| format!("w{n}")).collect();
        assert_eq!(words(&text.join(" ")).len(), MAX_WORDS);
    }

    #[test]
    fn every_word_is_a_quoted_phrase_in_the_text_column() {
        let expression = match_any_word(42, &words("NOT owner_id:1")).unwrap();
        assert_eq!(
            expression,
            r#"owner_id : "42" AND text : ("not" OR "owner" OR "id" OR "1")"#
        );
    }

    #[test]
    fn quote_doubles_inner_quotes() {
        assert_eq!(quote(r#"a"b"#), r#""a""b""#);
    }
}
