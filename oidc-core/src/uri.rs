//! Small, exact helpers over raw URI strings, used next to `url::Url` parsing.
//!
//! `url` implements the WHATWG URL standard, which silently repairs input (it trims
//! spaces, drops tabs and newlines, reads `\` as `/`, lowercases hosts). Identifiers that
//! are compared as strings must not be repaired, so every raw value is first checked here.

use url::{Host, Url};

use crate::error::{InvalidValue, InvalidValueKind};

/// Longest URI accepted anywhere in this crate.
pub(crate) const MAX_URI_LEN: usize = 2048;

/// Checks length and characters of an identifier that is not a URI: printable ASCII
/// without space and without `\`.
pub(crate) fn check_token_chars(
    what: &'static str,
    value: &str,
    max_len: usize,
) -> Result<(), InvalidValue> {
    check(what, value, max_len, |b| b.is_ascii_graphic() && b != b'\\')
}

/// Checks length and characters of a URI: only the characters RFC 3986 allows (unreserved,
/// reserved and `%`). Space, control characters, non-ASCII, `\`, `"`, `<`, `>`, `^`, `` ` ``,
/// `{`, `|` and `}` are refused rather than repaired or escaped.
pub(crate) fn check_chars(
    what: &'static str,
    value: &str,
    max_len: usize,
) -> Result<(), InvalidValue> {
    check(what, value, max_len, is_uri_byte)
}

fn check(
    what: &'static str,
    value: &str,
    max_len: usize,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), InvalidValue> {
    if value.is_empty() {
        return Err(InvalidValue::new(what, InvalidValueKind::Empty));
    }
    if value.len() > max_len {
        return Err(InvalidValue::new(what, InvalidValueKind::TooLong));
    }
    if !value.bytes().all(allowed) {
        return Err(InvalidValue::new(what, InvalidValueKind::InvalidCharacter));
    }
    Ok(())
}

/// `unreserved / reserved / "%"` (RFC 3986 §2).
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b':'
                | b'/'
                | b'?'
                | b'#'
                | b'['
                | b']'
                | b'@'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
        )
}

/// Parses an absolute URI after [`check_chars`].
pub(crate) fn parse_absolute(what: &'static str, value: &str) -> Result<Url, InvalidValue> {
    Url::parse(value).map_err(|_| InvalidValue::new(what, InvalidValueKind::NotAbsoluteUri))
}

/// Whether the URL carries `user:password@`.
pub(crate) fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Loopback hosts: `localhost`, 127.0.0.0/8 and `[::1]`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain == "localhost",
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks the scheme rule shared by issuers and endpoints: `https`, or `http` to a
/// loopback host.
pub(crate) fn check_web_scheme(what: &'static str, url: &Url) -> Result<(), InvalidValue> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(InvalidValue::new(what, InvalidValueKind::InsecureScheme)),
        _ => Err(InvalidValue::new(what, InvalidValueKind::UnsupportedScheme)),
    }
}

/// Whether `raw` is exactly what `url` serializes to, allowing only the `/` that `url` adds
/// to an empty path (`https://a.example` is `https://a.example/`).
pub(crate) fn is_canonical(raw: &str, url: &Url) -> bool {
    let serialized = url.as_str();
    serialized == raw
        || (url.path() == "/"
            && serialized.len() == raw.len() + 1
            && serialized.starts_with(raw)
            && serialized.ends_with('/'))
}

/// The parts of a raw `scheme://authority/rest` string, split without any normalisation.
pub(crate) struct RawParts<'a> {
    pub(crate) scheme: &'a str,
    /// The authority (between `//` and the next `/` or `?`), when the URI has one.
    pub(crate) authority: Option<&'a str>,
    /// Everything after the authority (or after `scheme:` without one).
    pub(crate) rest: &'a str,
}

/// Splits a raw URI string. `None` when there is no `scheme:`.
pub(crate) fn split_raw(raw: &str) -> Option<RawParts<'_>> {
    let (scheme, after) = raw.split_once(':')?;
    match after.strip_prefix("//") {
        Some(hier) => {
            let end = hier.find(['/', '?', '#']).unwrap_or(hier.len());
            let (authority, rest) = hier.split_at(end);
            Some(RawParts {
                scheme,
                authority: Some(authority),
                rest,
            })
        }
        None => Some(RawParts {
            scheme,
            authority: None,
            rest: after,
        }),
    }
}

/// Splits a raw authority without userinfo into host and port text (`""` or `":1234"`).
pub(crate) fn split_host_port(authority: &str) -> (&str, &str) {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    authority.split_at(host_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_raw_keeps_everything_as_written() {
        let p = split_raw("HTTP://Host:80/a/../b?q=1").unwrap();
        assert_eq!(
            (p.scheme, p.authority, p.rest),
            ("HTTP", Some("Host:80"), "/a/../b?q=1")
        );
        let p = split_raw("com.example.app:/cb").unwrap();
        assert_eq!(
            (p.scheme, p.authority, p.rest),
            ("com.example.app", None, "/cb")
        );
        let p = split_raw("https://h?x").unwrap();
        assert_eq!((p.authority, p.rest), (Some("h"), "?x"));
        assert!(split_raw("no-scheme").is_none());
    }

    #[test]
    fn split_host_port_handles_ipv6() {
        assert_eq!(split_host_port("[::1]:8080"), ("[::1]", ":8080"));
        assert_eq!(split_host_port("[::1]"), ("[::1]", ""));
        assert_eq!(split_host_port("127.0.0.1:1"), ("127.0.0.1", ":1"));
        assert_eq!(split_host_port("localhost"), ("localhost", ""));
    }

    #[test]
    fn check_chars_refuses_what_url_would_repair() {
        for bad in [
            " https://a",
            "https://a ",
            "https://a\t/b",
            "https://a\\b",
            "https://é",
            "https://a/\"><script>",
            "https://a/{x}",
            "https://a/`",
        ] {
            assert_eq!(
                check_chars("x", bad, 100).unwrap_err().kind(),
                InvalidValueKind::InvalidCharacter,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn token_chars_allow_printable_ascii_only() {
        assert!(check_token_chars("x", "a<b>\"c{|}", 100).is_ok());
        assert!(check_token_chars("x", "a b", 100).is_err());
        assert!(check_token_chars("x", "a\\b", 100).is_err());
        assert!(check_token_chars("x", "caf\u{e9}", 100).is_err());
    }
}
