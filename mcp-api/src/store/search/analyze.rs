//! Text analysis: from user text to index terms.
//!
//! The same steps run on memories and on queries, so a query word finds the
//! memory words it should:
//!
//! 1. split into words of Unicode letters and digits (an apostrophe inside a
//!    word keeps it together, so `user's` is one word);
//! 2. lowercase, and fold Latin accents (`café` → `cafe`);
//! 3. drop possessive and contraction suffixes (`user's` → `user`, `what's` →
//!    `what`, `don't` → `do`, `we've` → `we`), so no stray `s` or `t` term appears;
//! 4. drop stop words (everyday words such as `do`, `which`, `has`, which
//!    otherwise decide rankings when the key word misses);
//! 5. map British spellings to American ones (`favourite` → `favorite`);
//! 6. map irregular forms to their base form (`went` → `go`, `children` → `child`);
//! 7. stem with the Snowball English stemmer (`running` → `run`).
//!
//! Nothing here knows about any data set: the rules are about English words only.

use std::ops::Range;

use rust_stemmers::{Algorithm, Stemmer};

use super::lexicon::{STOP_WORDS, american_spelling, base_form};

/// Longest word (in bytes) that is indexed; longer runs of letters are not
/// words a person searches for, and this bounds stemming work.
const MAX_WORD_BYTES: usize = 64;

/// Turns text into index terms.
pub(crate) struct Analyzer {
    stemmer: Stemmer,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer").finish_non_exhaustive()
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Self {
            stemmer: Stemmer::create(Algorithm::English),
        }
    }
}

/// One word of the text and the term it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// Byte range of the word in the analysed text.
    pub(crate) span: Range<usize>,
    /// The index term.
    pub(crate) term: String,
}

impl Analyzer {
    /// The terms of `text`, in order, with repeats (stop words left out).
    pub(crate) fn terms(&self, text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        for (_, word) in words(text) {
            if let Some(term) = self.term(word) {
                terms.push(term);
            }
        }
        terms
    }

    /// The words of `text` that become terms, with where they are.
    pub(crate) fn tokens(&self, text: &str) -> Vec<Token> {
        words(text)
            .filter_map(|(start, word)| {
                self.term(word).map(|term| Token {
                    span: start..start + word.len(),
                    term,
                })
            })
            .collect()
    }

    /// The term one word becomes, or `None` for a stop word or a non-word.
    pub(crate) fn term(&self, word: &str) -> Option<String> {
        if word.len() > MAX_WORD_BYTES {
            return None;
        }
        let folded = fold(word);
        let base = strip_clitic(&folded);
        if base.is_empty() || is_stop_word(base) {
            return None;
        }
        let american = american_spelling(base);
        let base = american.as_deref().unwrap_or(base);
        let base = base_form(base).unwrap_or(base);
        // Digits and mixed tokens (`2024`, `b12`) are kept as written.
        if base.chars().any(|c| c.is_ascii_digit()) {
            return Some(base.to_owned());
        }
        let stemmed = self.stemmer.stem(base);
        Some(stemmed.into_owned())
    }
}

/// Whether `word` (lowercase, folded, without clitics) is a stop word.
fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// The words of `text` with their byte offsets: maximal runs of letters and
/// digits, joined by single apostrophes (`'` or `’`) between letters.
pub(crate) fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        // Skip to the start of a word.
        let start = loop {
            let (index, character) = rest.next()?;
            if character.is_alphanumeric() {
                break index;
            }
        };
        let mut end = text.len();
        while let Some(&(index, character)) = rest.peek() {
            if character.is_alphanumeric() {
                rest.next();
                continue;
            }
            if is_apostrophe(character) {
                // Keep the apostrophe only if a letter follows it.
                let after = index + character.len_utf8();
                if text[after..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphabetic)
                {
                    rest.next();
                    continue;
                }
            }
            end = index;
            break;
        }
        Some((start, &text[start..end]))
    })
}

fn is_apostrophe(character: char) -> bool {
    matches!(character, '\'' | '\u{2019}' | '\u{02bc}')
}

/// Lowercases and folds Latin accents; apostrophes become `'`.
fn fold(word: &str) -> String {
    let mut folded = String::with_capacity(word.len());
    for character in word.chars() {
        if is_apostrophe(character) {
            folded.push('\'');
            continue;
        }
        for lower in character.to_lowercase() {
            match fold_accent(lower) {
                Some(plain) => folded.push_str(plain),
                None => folded.push(lower),
            }
        }
    }
    folded
}

/// The unaccented form of common Latin letters with diacritics.
fn fold_accent(character: char) -> Option<&'static str> {
    Some(match character {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' | 'ľ' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// Drops a possessive or contraction suffix: `user's` → `user`, `users'`
/// (already cut by [`words`]) stays `users`, `don't` → `do`, `can't` → `can`,
/// `won't` → `will`, `i'm` → `i`. Other inner apostrophes (`o'neill`) are removed.
fn strip_clitic(word: &str) -> &str {
    let Some(apostrophe) = word.find('\'') else {
        return word;
    };
    let (base, suffix) = (&word[..apostrophe], &word[apostrophe + 1..]);
    match suffix {
        "s" | "re" | "ve" | "ll" | "d" | "m" => base,
        "t" => match base {
            "won" => "will",
            "can" | "ca" => "can",
            "shan" => "shall",
            _ => base.strip_suffix('n').unwrap_or(base),
        },
        // `o'neill`, `rock'n'roll`: a name or a compound, not a clitic; keep
        // the part before the apostrophe so the word still matches itself.
        _ => word.split('\'').next().unwrap_or(word),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        Analyzer::default().terms(text)
    }

    #[test]
    fn possessives_and_contractions_leave_no_stray_letters() {
        assert_eq!(terms("What's the user's favourite?"), ["user", "favorit"]);
        assert_eq!(
            terms("I don't, we've, they'll, she'd, I'm"),
            Vec::<String>::new()
        );
        assert_eq!(terms("It’s Anna’s car"), ["anna", "car"]);
        assert!(!terms("What's John's job? Where's Mary's").contains(&"s".to_owned()));
    }

    #[test]
    fn everyday_words_are_not_terms() {
        assert_eq!(terms("Which one do I have? Has it been?"), ["one"]);
    }

    #[test]
    fn british_and_american_spellings_meet() {
        assert_eq!(terms("favourite colour"), terms("favorite color"));
        assert_eq!(terms("the theatre centre"), terms("the theater center"));
        assert_eq!(terms("organised"), terms("organized"));
    }

    #[test]
    fn irregular_forms_meet_their_base_form() {
        assert_eq!(terms("we went, she has gone"), terms("go go"));
        assert_eq!(terms("bought children"), terms("buying child"));
    }

    #[test]
    fn stems_and_folds_accents() {
        assert_eq!(terms("running runs"), ["run", "run"]);
        assert_eq!(terms("Café"), terms("cafe"));
    }

    #[test]
    fn keeps_numbers_and_other_scripts() {
        assert_eq!(terms("flight 2024 東京"), ["flight", "2024", "東京"]);
    }

    #[test]
    fn query_syntax_is_just_text() {
        assert_eq!(
            terms(r#"owner_id:7 OR "x" NEAR(a b) -c*"#),
            ["owner", "id", "7", "x", "near", "b", "c"]
        );
    }

    #[test]
    fn token_spans_point_at_the_words() {
        let text = "I love my dog's ball";
        let tokens = Analyzer::default().tokens(text);
        let words: Vec<&str> = tokens.iter().map(|t| &text[t.span.clone()]).collect();
        assert_eq!(words, ["love", "dog's", "ball"]);
    }

    #[test]
    fn apostrophes_at_word_edges_are_not_part_of_words() {
        let found: Vec<&str> = words("'quoted' users' rock'n'roll")
            .map(|(_, w)| w)
            .collect();
        assert_eq!(found, ["quoted", "users", "rock'n'roll"]);
    }

    #[test]
    fn overlong_words_are_skipped() {
        assert!(terms(&"a".repeat(MAX_WORD_BYTES + 1)).is_empty());
    }
}
