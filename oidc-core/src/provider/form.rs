//! Request parameters: `application/x-www-form-urlencoded` bodies and query strings.

use std::fmt;

use http::HeaderMap;
use http::header::CONTENT_TYPE;
use url::form_urlencoded;
use zeroize::Zeroize as _;

use super::errors::OAuthError;

/// Most parameters a request may carry.
const MAX_PARAMS: usize = 200;

/// A single-valued parameter read at parse time whose error (a repeated parameter) is
/// reported where the endpoint uses it, so the order of errors follows the endpoint's
/// checks rather than the order of parsing.
pub(crate) type Deferred<'a> = Result<Option<&'a str>, OAuthError>;

/// Decoded parameters, in order. They may hold secrets (`client_secret`, `code`,
/// `refresh_token`, `code_verifier`): `Debug` shows only the names, and the values are
/// zeroed on drop.
#[derive(Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Drop for Params {
    fn drop(&mut self) {
        for (_, value) in &mut self.0 {
            value.zeroize();
        }
    }
}

impl Params {
    /// Decodes `input` (a query string or a form body).
    pub(crate) fn parse(input: &[u8]) -> Result<Params, OAuthError> {
        let mut pairs = Vec::new();
        for (name, value) in form_urlencoded::parse(input) {
            if pairs.len() == MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Params(pairs))
    }

    /// The value of a parameter that may appear once. An empty value counts as absent
    /// (RFC 6749 §3.1); a repeated one is an error.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(
                "a parameter is included more than once",
            ));
        }
        Ok(first)
    }

    /// Every non-empty value of a parameter that may repeat (`resource`).
    pub(crate) fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Whether a parameter is present, even with an empty value.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

/// Whether the request declares a form body (parameters such as `charset` are ignored).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Whether the request declares a JSON body.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space), as
/// RFC 6749 §2.3.1 requires of HTTP Basic client credentials. `None` for a malformed
/// escape or invalid UTF-8.
pub(crate) fn form_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| hex(*c))?;
                let lo = bytes.get(i + 2).and_then(|c| hex(*c))?;
                out.push((hi << 4) | lo);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_absent_and_repeats_are_refused() {
        let params = Params::parse(b"a=1&b=&c=x&c=y&resource=r1&resource=r2").unwrap();
        assert_eq!(params.get("a").unwrap(), Some("1"));
        assert_eq!(params.get("b").unwrap(), None);
        assert!(params.contains("b"));
        assert!(params.get("c").is_err());
        assert_eq!(params.all("resource").collect::<Vec<_>>(), ["r1", "r2"]);
    }

    #[test]
    fn debug_shows_names_only() {
        let params = Params::parse(b"client_secret=hunter2&code=abc").unwrap();
        let debug = format!("{params:?}");
        assert!(debug.contains("client_secret"));
        assert!(!debug.contains("hunter2") && !debug.contains("abc"));
    }

    #[test]
    fn too_many_parameters_are_refused() {
        let query = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert!(Params::parse(query.as_bytes()).is_err());
    }

    #[test]
    fn form_decoding_follows_rfc_6749_appendix_b() {
        assert_eq!(form_decode("a%20b+c%3A%25").as_deref(), Some("a b c:%"));
        assert_eq!(form_decode("%E2%82%AC").as_deref(), Some("\u{20ac}"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("%ff"), None);
    }
}
