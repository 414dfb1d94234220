//! Redirect URIs: what a client may register, and how a request's `redirect_uri` is
//! matched against the registered ones.
//!
//! Matching is exact string comparison (RFC 9700 §2.1, §4.1.3; OAuth 2.1 §2.3.1): no
//! case folding, no percent-decoding, no path normalisation, no prefix or pattern
//! matching. The one exception is the port of an `http` loopback redirect URI, which a
//! native app picks at run time (RFC 8252 §7.3): `http://127.0.0.1/cb` registered matches
//! `http://127.0.0.1:51234/cb` requested. Host, path and query must still be identical, and
//! `localhost`, `127.0.0.1` and `[::1]` are three different hosts.
//!
//! ```
//! use oidc_core::redirect::{RedirectUri, match_requested};
//!
//! let registered = [RedirectUri::parse("https://chatgpt.com/connector/oauth/abc123")?];
//! assert!(match_requested(&registered, "https://chatgpt.com/connector/oauth/abc123").is_some());
//! assert!(match_requested(&registered, "https://chatgpt.com/connector/oauth/abc123/").is_none());
//! # Ok::<(), oidc_core::InvalidValue>(())
//! ```

use crate::error::{InvalidValue, InvalidValueKind};
use crate::uri;

const WHAT: &str = "redirect uri";

/// The hosts an `http` redirect URI may name, written exactly like this.
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// A redirect URI that may be registered by a client (and that a request may name).
///
/// Accepted forms:
/// - `https://host[:port]/path[?query]`;
/// - `http://127.0.0.1[:port]/…`, `http://[::1][:port]/…` or `http://localhost[:port]/…`
///   (loopback redirects of native apps, RFC 8252 §7.3);
/// - a private-use scheme with a `.` in it, in reverse-domain form, such as
///   `com.example.app:/oauth2redirect` (RFC 8252 §7.1). Schemes without a dot
///   (`javascript:`, `data:`, `file:`, …) are refused.
///
/// Always refused: a fragment (even an empty `#`), a `*` anywhere, user information
/// (`user@`), relative references, whitespace, control and non-ASCII characters, `\`, and
/// an `http`/`https` scheme written in uppercase. The value is stored exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri {
    raw: Box<str>,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Https,
    LoopbackHttp,
    PrivateUse,
}

impl RedirectUri {
    /// Parses a redirect URI for registration (or from a request, before matching).
    ///
    /// ```
    /// use oidc_core::redirect::RedirectUri;
    ///
    /// assert!(RedirectUri::parse("https://app.example/cb?tenant=1").is_ok());
    /// assert!(RedirectUri::parse("http://127.0.0.1:8080/cb").is_ok());
    /// assert!(RedirectUri::parse("com.example.app:/oauth2redirect").is_ok());
    /// assert!(RedirectUri::parse("https://app.example/cb#frag").is_err());
    /// assert!(RedirectUri::parse("https://*.app.example/cb").is_err());
    /// assert!(RedirectUri::parse("http://app.example/cb").is_err());
    /// assert!(RedirectUri::parse("javascript:alert(1)").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<RedirectUri, InvalidValue> {
        let err = |kind| InvalidValue::new(WHAT, kind);
        uri::check_chars(WHAT, value, uri::MAX_URI_LEN)?;
        if value.contains('#') {
            return Err(err(InvalidValueKind::HasFragment));
        }
        if value.contains('*') {
            return Err(err(InvalidValueKind::Wildcard));
        }
        let url = uri::parse_absolute(WHAT, value)?;
        let Some(parts) = uri::split_raw(value) else {
            return Err(err(InvalidValueKind::NotAbsoluteUri));
        };
        if parts.authority.is_some_and(|a| a.contains('@')) || uri::has_userinfo(&url) {
            return Err(err(InvalidValueKind::HasUserinfo));
        }
        let kind = match parts.scheme {
            "https" => {
                // `url` reads `https:/host` and `https:///host` as `https://host/`; the raw
                // string must name its host itself.
                if parts.authority.is_none_or(str::is_empty) || url.host().is_none() {
                    return Err(err(InvalidValueKind::MissingHost));
                }
                Kind::Https
            }
            "http" => {
                let Some(authority) = parts.authority else {
                    return Err(err(InvalidValueKind::MissingHost));
                };
                let (host, port) = uri::split_host_port(authority);
                if !LOOPBACK_HOSTS.contains(&host) || !uri::is_loopback(&url) {
                    return Err(err(InvalidValueKind::InsecureScheme));
                }
                if !is_port_text(port) {
                    return Err(err(InvalidValueKind::Malformed));
                }
                Kind::LoopbackHttp
            }
            scheme
                if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") =>
            {
                return Err(err(InvalidValueKind::NotCanonical));
            }
            scheme if is_private_use_scheme(scheme) => Kind::PrivateUse,
            _ => return Err(err(InvalidValueKind::UnsupportedScheme)),
        };
        Ok(RedirectUri {
            raw: value.into(),
            kind,
        })
    }

    /// The redirect URI exactly as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether this is an `http` loopback redirect URI, whose port may vary.
    pub fn is_loopback(&self) -> bool {
        self.kind == Kind::LoopbackHttp
    }

    /// Whether this is a private-use-scheme redirect URI of a native app.
    pub fn is_private_use_scheme(&self) -> bool {
        self.kind == Kind::PrivateUse
    }

    /// Whether `requested` matches this registered redirect URI: the same string, or, when
    /// both are `http` loopback URIs, the same string apart from the port.
    pub fn matches(&self, requested: &RedirectUri) -> bool {
        if self.raw == requested.raw {
            return true;
        }
        if self.kind != Kind::LoopbackHttp || requested.kind != Kind::LoopbackHttp {
            return false;
        }
        match (
            loopback_without_port(&self.raw),
            loopback_without_port(&requested.raw),
        ) {
            (Some(registered), Some(requested)) => registered == requested,
            _ => false,
        }
    }
}

string_newtype_impls!(RedirectUri);

/// Matches the `redirect_uri` of an authorization request against a client's registered
/// redirect URIs. Returns the URI to redirect to (the requested one, which differs from
/// the registered one only in a loopback port), or `None`: then the authorization server
/// must show an error page and never redirect (RFC 6749 §4.1.2.1).
///
/// ```
/// use oidc_core::redirect::{RedirectUri, match_requested};
///
/// let registered = [RedirectUri::parse("http://127.0.0.1/callback")?];
/// let chosen = match_requested(&registered, "http://127.0.0.1:49152/callback").unwrap();
/// assert_eq!(chosen.as_str(), "http://127.0.0.1:49152/callback");
/// assert!(match_requested(&registered, "http://localhost:49152/callback").is_none());
/// # Ok::<(), oidc_core::InvalidValue>(())
/// ```
pub fn match_requested<'a>(
    registered: impl IntoIterator<Item = &'a RedirectUri>,
    requested: &str,
) -> Option<RedirectUri> {
    let requested = RedirectUri::parse(requested).ok()?;
    registered
        .into_iter()
        .any(|r| r.matches(&requested))
        .then_some(requested)
}

/// `(host, path-and-query)` of a raw `http` loopback URI, i.e. everything but the port.
fn loopback_without_port(raw: &str) -> Option<(&str, &str)> {
    let parts = uri::split_raw(raw)?;
    let (host, _port) = uri::split_host_port(parts.authority?);
    Some((host, parts.rest))
}

/// `""` or `:` followed by 1 to 5 digits.
fn is_port_text(port: &str) -> bool {
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// RFC 3986 scheme syntax, plus a `.` as RFC 8252 §7.1 requires of private-use schemes
/// (reverse domain names), which rules out `javascript`, `data`, `file` and friends.
fn is_private_use_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && scheme.contains('.')
        && !scheme.starts_with('.')
        && !scheme.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "https://good.example/cb";

    fn registered(uri: &str) -> Vec<RedirectUri> {
        vec![RedirectUri::parse(uri).unwrap()]
    }

    fn accepted(registered_uri: &str, requested: &str) -> bool {
        match_requested(&registered(registered_uri), requested).is_some()
    }

    fn refused_kind(uri: &str) -> InvalidValueKind {
        RedirectUri::parse(uri).unwrap_err().kind()
    }

    #[test]
    fn exact_match_is_accepted() {
        assert!(accepted(GOOD, GOOD));
        assert!(accepted(
            "https://good.example/cb?a=1",
            "https://good.example/cb?a=1"
        ));
        assert!(accepted(
            "com.example.app:/oauth2redirect",
            "com.example.app:/oauth2redirect"
        ));
    }

    #[test]
    fn attack_trailing_slash_is_rejected() {
        assert!(!accepted(GOOD, "https://good.example/cb/"));
        assert!(!accepted("https://good.example/cb/", GOOD));
        assert!(!accepted("https://good.example", "https://good.example/"));
    }

    #[test]
    fn attack_case_change_in_path_is_rejected() {
        assert!(!accepted(GOOD, "https://good.example/CB"));
        assert!(!accepted(GOOD, "https://good.example/Cb"));
    }

    #[test]
    fn attack_case_change_in_host_or_scheme_is_rejected() {
        assert!(!accepted(GOOD, "https://GOOD.example/cb"));
        assert_eq!(
            refused_kind("HTTPS://good.example/cb"),
            InvalidValueKind::NotCanonical
        );
    }

    #[test]
    fn attack_extra_query_parameter_is_rejected() {
        assert!(!accepted(
            GOOD,
            "https://good.example/cb?next=https://evil.example"
        ));
        assert!(!accepted(GOOD, "https://good.example/cb?"));
        assert!(!accepted(
            "https://good.example/cb?a=1",
            "https://good.example/cb?a=1&b=2"
        ));
        assert!(!accepted(
            "https://good.example/cb?a=1&b=2",
            "https://good.example/cb?b=2&a=1"
        ));
    }

    #[test]
    fn attack_added_fragment_is_rejected() {
        assert!(!accepted(GOOD, "https://good.example/cb#"));
        assert!(!accepted(
            GOOD,
            "https://good.example/cb#https://evil.example"
        ));
        assert_eq!(
            refused_kind("https://good.example/cb#x"),
            InvalidValueKind::HasFragment
        );
    }

    #[test]
    fn attack_path_traversal_suffix_is_rejected() {
        assert!(!accepted(GOOD, "https://good.example/cb/../evil"));
        assert!(!accepted(GOOD, "https://good.example/cb/%2e%2e/evil"));
        assert!(!accepted(GOOD, "https://good.example/cb/./"));
    }

    #[test]
    fn attack_path_prefix_extension_is_rejected() {
        assert!(!accepted(GOOD, "https://good.example/cbevil"));
        assert!(!accepted(GOOD, "https://good.example/cb/evil"));
        assert!(!accepted(GOOD, "https://good.example/cb;evil"));
    }

    #[test]
    fn attack_scheme_downgrade_to_http_is_rejected() {
        assert!(!accepted(GOOD, "http://good.example/cb"));
        assert!(!accepted("https://127.0.0.1/cb", "http://127.0.0.1/cb"));
        assert!(!accepted("http://127.0.0.1/cb", "https://127.0.0.1/cb"));
    }

    #[test]
    fn attack_userinfo_at_trick_is_rejected() {
        assert!(!accepted(
            "https://good.example/",
            "https://good.example@evil.example/"
        ));
        assert_eq!(
            refused_kind("https://good.example@evil.example/"),
            InvalidValueKind::HasUserinfo
        );
        assert_eq!(
            refused_kind("https://good.example:pw@evil.example/cb"),
            InvalidValueKind::HasUserinfo
        );
        assert_eq!(
            refused_kind("http://127.0.0.1:80@evil.example/cb"),
            InvalidValueKind::HasUserinfo
        );
    }

    #[test]
    fn attack_backslash_host_confusion_is_rejected() {
        assert_eq!(
            refused_kind("https://evil.example\\@good.example/cb"),
            InvalidValueKind::InvalidCharacter
        );
        assert!(!accepted(GOOD, "https://good.example\\cb"));
    }

    #[test]
    fn attack_same_prefix_different_host_is_rejected() {
        assert!(!accepted(
            "https://good.example/",
            "https://good.example.evil.example/"
        ));
        assert!(!accepted(
            "https://good.example",
            "https://good.example.evil.example"
        ));
        assert!(!accepted(GOOD, "https://good.examplecb"));
    }

    #[test]
    fn attack_port_change_on_non_loopback_is_rejected() {
        assert!(!accepted(GOOD, "https://good.example:8443/cb"));
        assert!(!accepted(
            "https://good.example:8443/cb",
            "https://good.example:9443/cb"
        ));
        assert!(!accepted(GOOD, "https://good.example:443/cb"));
        assert!(!accepted(
            "https://127.0.0.1:1/cb",
            "https://127.0.0.1:2/cb"
        ));
        assert!(!accepted(
            "com.example.app://host:1/cb",
            "com.example.app://host:2/cb"
        ));
    }

    #[test]
    fn loopback_port_change_is_allowed() {
        for base in ["127.0.0.1", "[::1]", "localhost"] {
            let registered = format!("http://{base}/cb");
            assert!(
                accepted(&registered, &format!("http://{base}:49152/cb")),
                "{base}"
            );
            assert!(accepted(
                &format!("http://{base}:1/cb"),
                &format!("http://{base}:2/cb")
            ));
            assert!(accepted(
                &format!("http://{base}:1/cb"),
                &format!("http://{base}/cb")
            ));
            assert!(!accepted(&registered, &format!("http://{base}:49152/cb2")));
            assert!(!accepted(&registered, &format!("http://{base}:49152/cb?x")));
        }
        let chosen = match_requested(&registered("http://[::1]/cb"), "http://[::1]:5000/cb");
        assert_eq!(
            chosen.unwrap().as_str(),
            "http://[::1]:5000/cb",
            "redirect to the app's port"
        );
    }

    #[test]
    fn attack_localhost_and_loopback_ip_are_not_interchangeable() {
        assert!(!accepted("http://127.0.0.1/cb", "http://localhost/cb"));
        assert!(!accepted("http://localhost/cb", "http://127.0.0.1/cb"));
        assert!(!accepted("http://127.0.0.1:80/cb", "http://[::1]:80/cb"));
        assert!(!accepted("http://127.0.0.1/cb", "http://127.0.0.2/cb"));
        assert!(!accepted("http://127.0.0.1/cb", "http://127.1/cb"));
        assert!(!accepted(
            "http://127.0.0.1/cb",
            "http://localhost.evil.example/cb"
        ));
    }

    #[test]
    fn attack_percent_encoding_variant_is_rejected() {
        assert!(!accepted(GOOD, "https://good.example/c%62"));
        assert!(!accepted(GOOD, "https://good.example/%63%62"));
        assert!(!accepted(
            "https://good.example/a%2Fb",
            "https://good.example/a/b"
        ));
        assert!(!accepted(
            "https://good.example/a%2Fb",
            "https://good.example/a%2fb"
        ));
        assert!(!accepted(
            "https://good.example/cb?x=a%20b",
            "https://good.example/cb?x=a+b"
        ));
        assert!(!accepted(GOOD, "https://%67ood.example/cb"));
    }

    #[test]
    fn attack_whitespace_padding_is_rejected() {
        for bad in [
            " https://good.example/cb",
            "https://good.example/cb ",
            "https://good.example/c\tb",
        ] {
            assert!(!accepted(GOOD, bad), "{bad:?}");
        }
    }

    #[test]
    fn attack_markup_characters_are_rejected() {
        for bad in [
            "https://good.example/cb?x=\"><script>alert(1)</script>",
            "https://good.example/cb?x=<img>",
            "https://good.example/{cb}",
        ] {
            assert_eq!(
                refused_kind(bad),
                InvalidValueKind::InvalidCharacter,
                "{bad}"
            );
        }
    }

    #[test]
    fn attack_scheme_relative_or_slash_variants_are_rejected() {
        assert!(!accepted(GOOD, "//good.example/cb"));
        assert!(!accepted(GOOD, "https:/good.example/cb"));
        assert!(!accepted(GOOD, "https:///good.example/cb"));
        assert!(!accepted(GOOD, "https:good.example/cb"));
    }

    #[test]
    fn registration_refuses_wildcards() {
        for bad in [
            "https://*.good.example/cb",
            "https://good.example/*",
            "https://good.example/cb?x=*",
        ] {
            assert_eq!(refused_kind(bad), InvalidValueKind::Wildcard, "{bad}");
        }
    }

    #[test]
    fn registration_refuses_http_to_non_loopback_hosts() {
        for bad in [
            "http://good.example/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.2/cb",
            "http://127.1/cb",
            "http://[0:0::1]/cb",
            "http://LOCALHOST/cb",
        ] {
            assert_eq!(refused_kind(bad), InvalidValueKind::InsecureScheme, "{bad}");
        }
        assert_eq!(
            refused_kind("http://127.0.0.1:/cb"),
            InvalidValueKind::Malformed
        );
    }

    #[test]
    fn registration_refuses_dangerous_and_unknown_schemes() {
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "ftp://good.example/cb",
            "ws://127.0.0.1/cb",
            "myapp:/cb",
            ".example:/cb",
        ] {
            let kind = refused_kind(bad);
            assert!(
                matches!(
                    kind,
                    InvalidValueKind::UnsupportedScheme | InvalidValueKind::NotAbsoluteUri
                ),
                "{bad}: {kind:?}"
            );
        }
        assert_eq!(
            refused_kind("/relative/cb"),
            InvalidValueKind::NotAbsoluteUri
        );
        assert_eq!(refused_kind(""), InvalidValueKind::Empty);
    }

    #[test]
    fn registration_accepts_native_app_forms() {
        let private = RedirectUri::parse("com.example.app:/oauth2redirect/provider").unwrap();
        assert!(private.is_private_use_scheme());
        assert!(!private.is_loopback());
        assert!(
            RedirectUri::parse("http://[::1]:8080/cb")
                .unwrap()
                .is_loopback()
        );
        assert!(
            RedirectUri::parse("http://localhost/")
                .unwrap()
                .is_loopback()
        );
        assert!(!RedirectUri::parse(GOOD).unwrap().is_loopback());
    }

    #[test]
    fn no_registered_uris_means_no_match() {
        assert!(match_requested(&[], GOOD).is_none());
        assert!(match_requested(&registered(GOOD), "not a uri").is_none());
    }
}
