//! Reading what a page sends: query strings, urlencoded forms, and the checks every
//! state-changing form passes (same origin, CSRF token).

use http::HeaderMap;
use http::header::ORIGIN;

use super::session::same_secret;

/// Largest urlencoded form read (bulk actions name at most a page of ids).
pub(super) const MAX_FORM_BYTES: usize = 256 * 1024;

/// A parsed query string or form: its pairs in order.
#[derive(Debug, Default)]
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(super) fn parse(text: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(text).into_owned().collect())
    }

    /// The first value of `name`, if not empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// Every value of `name`.
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Why a state-changing request is refused before it is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Forgery {
    /// It came from another origin (or says nothing about where it came from).
    CrossOrigin,
    /// Its CSRF token is missing or wrong.
    BadToken,
}

/// Checks that a POST comes from a page of `own_origin`: an `Origin` header equal to it,
/// or, when a browser sends none, `Sec-Fetch-Site: same-origin`. Requests that carry
/// neither are refused: every browser that runs the page sends one of them.
pub(super) fn same_origin(headers: &HeaderMap, own_origin: &str) -> Result<(), Forgery> {
    let mut origins = headers.get_all(ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (Some(origin), None) => {
            if origin.as_bytes() == own_origin.as_bytes() {
                Ok(())
            } else {
                Err(Forgery::CrossOrigin)
            }
        }
        (Some(_), Some(_)) => Err(Forgery::CrossOrigin),
        (None, _) => match headers.get("sec-fetch-site") {
            Some(site) if site.as_bytes() == b"same-origin" => Ok(()),
            _ => Err(Forgery::CrossOrigin),
        },
    }
}

/// Checks the form's `csrf` field against the session's token, in constant time.
pub(super) fn csrf_matches(fields: &Fields, expected: &str) -> Result<(), Forgery> {
    match fields.get("csrf") {
        Some(token) if same_secret(token, expected) => Ok(()),
        _ => Err(Forgery::BadToken),
    }
}

/// The origin (`scheme://host[:port]`) of a base URL.
pub(super) fn origin_of(base_url: &str) -> String {
    let Some((scheme, rest)) = base_url.split_once("://") else {
        return base_url.to_owned();
    };
    let authority = rest.split('/').next().unwrap_or("");
    format!("{scheme}://{authority}")
}

/// A path to return to after signing in: only paths under `/app/`, never another site
/// (`//evil.example`, `/app/../`, backslashes).
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with("/app/")
                && !path.contains("//")
                && !path.contains('\\')
                && !path.contains("..")
                && path.len() <= 2048
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/app/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn attack_cross_site_post_is_refused() {
        let own = "https://memory.example";
        assert_eq!(
            same_origin(&headers(&[("origin", "https://evil.example")]), own),
            Err(Forgery::CrossOrigin)
        );
        assert_eq!(
            same_origin(&headers(&[("origin", "null")]), own),
            Err(Forgery::CrossOrigin)
        );
        assert_eq!(
            same_origin(&headers(&[("sec-fetch-site", "cross-site")]), own),
            Err(Forgery::CrossOrigin)
        );
        assert_eq!(
            same_origin(&headers(&[("sec-fetch-site", "same-site")]), own),
            Err(Forgery::CrossOrigin)
        );
        assert_eq!(
            same_origin(&HeaderMap::new(), own),
            Err(Forgery::CrossOrigin)
        );
        assert_eq!(
            same_origin(
                &headers(&[("origin", own), ("origin", "https://evil.example")]),
                own
            ),
            Err(Forgery::CrossOrigin)
        );
        assert!(same_origin(&headers(&[("origin", "https://memory.example")]), own).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")]), own).is_ok());
    }

    #[test]
    fn attack_forged_csrf_token_is_refused() {
        let fields = Fields::parse(b"csrf=abc&x=1");
        assert!(csrf_matches(&fields, "abc").is_ok());
        assert_eq!(csrf_matches(&fields, "abd"), Err(Forgery::BadToken));
        assert_eq!(
            csrf_matches(&Fields::parse(b"x=1"), "abc"),
            Err(Forgery::BadToken)
        );
        assert_eq!(
            csrf_matches(&Fields::parse(b"csrf="), ""),
            Err(Forgery::BadToken)
        );
    }

    #[test]
    fn attack_open_redirect_after_sign_in_is_refused() {
        for evil in [
            "//evil.example",
            "https://evil.example/app/",
            "/app//evil.example",
            "/app/\\evil.example",
            "/app/../api/v1",
            "/elsewhere",
        ] {
            assert_eq!(safe_next(Some(evil)), "/app/", "{evil}");
        }
        assert_eq!(safe_next(Some("/app/apps")), "/app/apps");
        assert_eq!(safe_next(Some("/app/?q=tea&page=2")), "/app/?q=tea&page=2");
        assert_eq!(safe_next(None), "/app/");
    }

    #[test]
    fn origins_of_base_urls() {
        assert_eq!(origin_of("http://127.0.0.1:8765"), "http://127.0.0.1:8765");
        assert_eq!(
            origin_of("https://memory.example/base"),
            "https://memory.example"
        );
    }

    #[test]
    fn fields_keep_repeats_and_skip_empties() {
        let fields = Fields::parse(b"ids=a&ids=b&q=&action=delete");
        assert_eq!(fields.all("ids").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(fields.get("q"), None);
        assert_eq!(fields.get("action"), Some("delete"));
    }
}
