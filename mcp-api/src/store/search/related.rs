//! Related terms for query expansion: synonyms, more general terms and kinds of a
//! word, from WordNet 3.1 (`related.txt`, built by `scripts/build-lexicon`).
//!
//! A query for "physician" also looks for "doctor" and "gp", one for "film" for
//! "movie", at a lower weight ([`SearchParams::related_weight`](super::SearchParams)),
//! so a memory with the query's own words still ranks first. The lexicon is parsed
//! and analysed once, on first use (about 14,000 words).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::analyze::Analyzer;

/// The WordNet-derived word list: `word<TAB>related related …`, `#` comments.
const RELATED: &str = include_str!("related.txt");

/// Terms related to a term, both as the analyser makes them.
#[derive(Debug, Default)]
pub(crate) struct Lexicon {
    related: HashMap<String, Vec<String>>,
}

impl Lexicon {
    /// The terms related to `term` (an analysed term), best first.
    pub(crate) fn related(&self, term: &str) -> &[String] {
        self.related.get(term).map_or(&[], Vec::as_slice)
    }

    fn parse(text: &str, analyzer: &Analyzer) -> Self {
        let mut related: HashMap<String, Vec<String>> = HashMap::new();
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((word, others)) = line.split_once('\t') else {
                continue;
            };
            let Some(term) = analyzer.term(word) else {
                continue;
            };
            let entry = related.entry(term.clone()).or_default();
            for other in others.split(' ').filter_map(|other| analyzer.term(other)) {
                if other != term && !entry.contains(&other) {
                    entry.push(other);
                }
            }
        }
        related.retain(|_, terms| !terms.is_empty());
        Self { related }
    }
}

/// The lexicon, parsed on first use.
pub(crate) fn lexicon() -> &'static Lexicon {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    LEXICON.get_or_init(|| Lexicon::parse(RELATED, &Analyzer::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn related(word: &str) -> Vec<String> {
        let analyzer = Analyzer::default();
        let term = analyzer.term(word).unwrap();
        lexicon().related(&term).to_vec()
    }

    fn term(word: &str) -> String {
        Analyzer::default().term(word).unwrap()
    }

    #[test]
    fn wordnet_relations_are_loaded_as_terms() {
        assert!(related("physician").contains(&term("doctor")));
        assert!(related("doctor").contains(&term("gp")));
        assert!(related("film").contains(&term("movie")));
        assert!(related("coffee").contains(&term("espresso")));
    }

    #[test]
    fn a_word_is_not_its_own_relative_and_stop_words_have_none() {
        assert!(!related("movie").contains(&term("movie")));
        assert!(lexicon().related("the").is_empty());
    }

    #[test]
    fn parsing_skips_comments_and_malformed_lines() {
        let lexicon = Lexicon::parse(
            "# note\nno tab here\nsofa\tcouch settee\n",
            &Analyzer::default(),
        );
        assert_eq!(lexicon.related.len(), 1);
    }
}
