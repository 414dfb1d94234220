//! Identifiers that can only hold valid values: [`Issuer`], [`ClientId`], [`Subject`],
//! [`Scope`] and [`ResourceIndicator`].
//!
//! Each is built by `parse` (or `FromStr`, `TryFrom`, serde), which refuses anything that
//! is not valid; a value that exists is valid. All of them compare by exact string
//! equality, which is what OAuth and OpenID Connect require of these identifiers.

use crate::error::{InvalidValue, InvalidValueKind};
use crate::uri;

/// The authorization server's issuer identifier (RFC 8414 §2, OpenID Connect Discovery §3).
///
/// An absolute `https` URL (or `http` when the host is loopback: 127.0.0.0/8, `[::1]` or
/// `localhost`) with no query, no fragment and no user information, written in canonical
/// form (lowercase scheme and host, no default port, no dot segments). It is stored exactly
/// as given: [`as_str`](Issuer::as_str) is the `iss` claim, the `issuer` of the discovery
/// document and the `iss` authorization-response parameter, and clients compare it by
/// simple string comparison. `https://as.example` and `https://as.example/` are two
/// different issuers; pick one and keep it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Issuer(Box<str>);

impl Issuer {
    /// Parses an issuer identifier.
    ///
    /// ```
    /// use oidc_core::types::Issuer;
    ///
    /// let issuer = Issuer::parse("https://auth.example.com")?;
    /// assert_eq!(issuer.as_str(), "https://auth.example.com");
    /// assert!(Issuer::parse("http://auth.example.com").is_err());
    /// assert!(Issuer::parse("http://127.0.0.1:8080").is_ok());
    /// assert!(Issuer::parse("https://auth.example.com/?tenant=1").is_err());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn parse(value: &str) -> Result<Issuer, InvalidValue> {
        const WHAT: &str = "issuer";
        let err = |kind| InvalidValue::new(WHAT, kind);
        uri::check_chars(WHAT, value, uri::MAX_URI_LEN)?;
        if value.contains('#') {
            return Err(err(InvalidValueKind::HasFragment));
        }
        if value.contains('?') {
            return Err(err(InvalidValueKind::HasQuery));
        }
        let url = uri::parse_absolute(WHAT, value)?;
        uri::check_web_scheme(WHAT, &url)?;
        if uri::has_userinfo(&url) {
            return Err(err(InvalidValueKind::HasUserinfo));
        }
        if !uri::is_canonical(value, &url) {
            return Err(err(InvalidValueKind::NotCanonical));
        }
        Ok(Issuer(value.into()))
    }

    /// The issuer exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the host is loopback (`localhost`, 127.0.0.0/8 or `[::1]`): the only hosts
    /// an `http` issuer may have.
    ///
    /// ```
    /// use oidc_core::types::Issuer;
    ///
    /// assert!(Issuer::parse("http://127.0.0.1:8766")?.is_loopback());
    /// assert!(Issuer::parse("https://localhost")?.is_loopback());
    /// assert!(Issuer::parse("http://[::1]:8766")?.is_loopback());
    /// assert!(!Issuer::parse("https://accounts.google.com")?.is_loopback());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn is_loopback(&self) -> bool {
        // A valid issuer is an absolute URL, so it parses again.
        uri::parse_absolute("issuer", &self.0).is_ok_and(|url| uri::is_loopback(&url))
    }

    /// The issuer's path without a trailing `/` (`""` for an issuer without a path).
    pub(crate) fn path(&self) -> &str {
        // A valid issuer is `scheme://authority[/path]` with no query or fragment.
        let after_scheme = self.0.split_once("://").map_or("", |(_, rest)| rest);
        let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
        path.strip_suffix('/').unwrap_or(path)
    }

    /// `issuer` (without a trailing `/`) followed by `path`, which starts with `/`.
    pub(crate) fn join(&self, path: &str) -> String {
        let base = self.0.strip_suffix('/').unwrap_or(&self.0);
        format!("{base}{path}")
    }
}

string_newtype_impls!(Issuer);

/// An OAuth client identifier (RFC 6749 §2.2).
///
/// 1 to 2048 printable ASCII characters without spaces (client ids may be Client ID
/// Metadata Document URLs, which can be long). Compared by exact string equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Box<str>);

impl ClientId {
    /// Parses a client identifier.
    ///
    /// ```
    /// use oidc_core::types::ClientId;
    ///
    /// let id = ClientId::parse("s6BhdRkqt3")?;
    /// assert_eq!(id.as_str(), "s6BhdRkqt3");
    /// assert!(ClientId::parse("").is_err());
    /// assert!(ClientId::parse("two words").is_err());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn parse(value: &str) -> Result<ClientId, InvalidValue> {
        uri::check_token_chars("client id", value, uri::MAX_URI_LEN)?;
        Ok(ClientId(value.into()))
    }

    /// The client identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this client id has the form of an OAuth Client ID Metadata Document URL: an
    /// `https` URL with a path other than `/`, no fragment, no user information, and in
    /// canonical form (so no `.`/`..` segments). Such a client is resolved by fetching its
    /// metadata document from this URL; other ids must be registered.
    ///
    /// ```
    /// use oidc_core::types::ClientId;
    ///
    /// let cimd = ClientId::parse("https://app.example/oauth/client.json")?;
    /// assert!(cimd.is_metadata_document_url());
    /// assert!(!ClientId::parse("https://app.example/")?.is_metadata_document_url());
    /// assert!(!ClientId::parse("s6BhdRkqt3")?.is_metadata_document_url());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn is_metadata_document_url(&self) -> bool {
        if !self.0.starts_with("https://") || self.0.contains('#') {
            return false;
        }
        let Ok(url) = url::Url::parse(&self.0) else {
            return false;
        };
        url.scheme() == "https"
            && url.host().is_some()
            && !uri::has_userinfo(&url)
            && url.path() != "/"
            && url.as_str() == &*self.0
    }
}

string_newtype_impls!(ClientId);

/// A subject identifier: the stable, locally unique id of an end user (`sub`).
///
/// 1 to 255 printable ASCII characters without spaces (OpenID Connect Core §2 caps `sub` at
/// 255 ASCII characters). Case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(Box<str>);

impl Subject {
    /// Longest subject accepted.
    pub const MAX_LEN: usize = 255;

    /// Parses a subject identifier.
    ///
    /// ```
    /// use oidc_core::types::Subject;
    ///
    /// let sub = Subject::parse("24400320")?;
    /// assert_eq!(sub.as_str(), "24400320");
    /// assert!(Subject::parse(&"x".repeat(256)).is_err());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn parse(value: &str) -> Result<Subject, InvalidValue> {
        uri::check_token_chars("subject", value, Self::MAX_LEN)?;
        Ok(Subject(value.into()))
    }

    /// The subject identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_impls!(Subject);

/// An ordered set of scope tokens (RFC 6749 §3.3).
///
/// Parsed from the space-delimited `scope` parameter: tokens are separated by exactly one
/// space, and each is one or more of `%x21 / %x23-5B / %x5D-7E` (printable ASCII except
/// `"` and `\`). A repeated token is kept once, at its first position. The set is never
/// empty: a missing `scope` parameter is an `Option<Scope>` at the call site.
///
/// [`Display`](std::fmt::Display) and [`as_str`](Scope::as_str) join the tokens with single
/// spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(Box<str>);

impl Scope {
    /// Longest `scope` string accepted, in bytes.
    pub const MAX_LEN: usize = 4096;
    /// Most tokens (repeats included) accepted.
    pub const MAX_TOKENS: usize = 256;

    /// Parses a space-delimited scope string.
    ///
    /// ```
    /// use oidc_core::types::Scope;
    ///
    /// let scope = Scope::parse("openid email memories:read email")?;
    /// assert_eq!(scope.to_string(), "openid email memories:read");
    /// assert!(scope.contains("memories:read"));
    /// assert!(Scope::parse("openid")?.is_subset_of(&scope));
    /// assert!(Scope::parse("openid  email").is_err());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn parse(value: &str) -> Result<Scope, InvalidValue> {
        if value.is_empty() {
            return Err(InvalidValue::new("scope", InvalidValueKind::Empty));
        }
        if value.len() > Self::MAX_LEN {
            return Err(InvalidValue::new("scope", InvalidValueKind::TooLong));
        }
        Scope::from_tokens(value.split(' '))
    }

    /// Builds a scope from individual tokens, each of which must be a valid scope token.
    ///
    /// ```
    /// use oidc_core::types::Scope;
    ///
    /// let scope = Scope::from_tokens(["memories:read", "memories:write"])?;
    /// assert_eq!(scope.as_str(), "memories:read memories:write");
    /// assert!(Scope::from_tokens(["two words"]).is_err());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn from_tokens<'a>(
        tokens: impl IntoIterator<Item = &'a str>,
    ) -> Result<Scope, InvalidValue> {
        const WHAT: &str = "scope";
        let mut joined = String::new();
        for (count, token) in tokens.into_iter().enumerate() {
            if count >= Self::MAX_TOKENS {
                return Err(InvalidValue::new(WHAT, InvalidValueKind::TooLong));
            }
            if token.is_empty() {
                return Err(InvalidValue::new(WHAT, InvalidValueKind::Malformed));
            }
            if !token.bytes().all(is_scope_token_byte) {
                return Err(InvalidValue::new(WHAT, InvalidValueKind::InvalidCharacter));
            }
            if joined.split(' ').any(|t| t == token) {
                continue;
            }
            if joined.len() + 1 + token.len() > Self::MAX_LEN {
                return Err(InvalidValue::new(WHAT, InvalidValueKind::TooLong));
            }
            if !joined.is_empty() {
                joined.push(' ');
            }
            joined.push_str(token);
        }
        if joined.is_empty() {
            return Err(InvalidValue::new(WHAT, InvalidValueKind::Empty));
        }
        Ok(Scope(joined.into()))
    }

    /// The tokens joined with single spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tokens, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ')
    }

    /// How many tokens the scope holds (at least one).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Always `false`: a scope holds at least one token.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `token` is one of the tokens (exact, case-sensitive comparison).
    pub fn contains(&self, token: &str) -> bool {
        self.iter().any(|t| t == token)
    }

    /// Whether every token of `self` is also in `other`. Used to check that a refresh or
    /// token request only narrows what was granted.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.iter().all(|t| other.contains(t))
    }
}

string_newtype_impls!(Scope);

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`
fn is_scope_token_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// A resource indicator (RFC 8707): the URI of the protected resource a token is for,
/// carried into the access token's `aud`.
///
/// An absolute URI with no fragment and no user information. The scheme and host are
/// lowercased; everything else (path, trailing slash, port, query) is kept exactly as
/// given, so two indicators are equal only if they name the resource the same way. Which
/// resources a client may ask for is a policy decision made elsewhere (an allow-list),
/// answered with `invalid_target`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceIndicator(Box<str>);

impl ResourceIndicator {
    /// Parses a `resource` parameter value.
    ///
    /// ```
    /// use oidc_core::types::ResourceIndicator;
    ///
    /// let r = ResourceIndicator::parse("HTTPS://MCP.Example.com/mcp")?;
    /// assert_eq!(r.as_str(), "https://mcp.example.com/mcp");
    /// assert!(ResourceIndicator::parse("https://mcp.example.com/mcp#x").is_err());
    /// assert!(ResourceIndicator::parse("/mcp").is_err());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn parse(value: &str) -> Result<ResourceIndicator, InvalidValue> {
        const WHAT: &str = "resource indicator";
        let err = |kind| InvalidValue::new(WHAT, kind);
        uri::check_chars(WHAT, value, uri::MAX_URI_LEN)?;
        if value.contains('#') {
            return Err(err(InvalidValueKind::HasFragment));
        }
        let url = uri::parse_absolute(WHAT, value)?;
        if uri::has_userinfo(&url) {
            return Err(err(InvalidValueKind::HasUserinfo));
        }
        let Some(parts) = uri::split_raw(value) else {
            return Err(err(InvalidValueKind::NotAbsoluteUri));
        };
        if parts.authority.is_some_and(|a| a.contains('@')) {
            return Err(err(InvalidValueKind::HasUserinfo));
        }
        let mut normalised = parts.scheme.to_ascii_lowercase();
        normalised.push(':');
        if let Some(authority) = parts.authority {
            normalised.push_str("//");
            normalised.push_str(&authority.to_ascii_lowercase());
        }
        normalised.push_str(parts.rest);
        Ok(ResourceIndicator(normalised.into()))
    }

    /// The normalised indicator (lowercase scheme and host).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_impls!(ResourceIndicator);

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(result: Result<impl std::fmt::Debug, InvalidValue>) -> InvalidValueKind {
        result.unwrap_err().kind()
    }

    #[test]
    fn issuer_is_kept_exactly_as_given() {
        for ok in [
            "https://auth.example.com",
            "https://auth.example.com/",
            "https://auth.example.com/tenant1",
            "https://auth.example.com:8443/tenant1/",
            "http://localhost:8080",
            "http://127.0.0.1",
            "http://127.1.2.3:9000/x",
            "http://[::1]:8080",
        ] {
            assert_eq!(Issuer::parse(ok).unwrap().as_str(), ok);
        }
        assert_ne!(
            Issuer::parse("https://a.example").unwrap(),
            Issuer::parse("https://a.example/").unwrap(),
            "no trailing-slash normalisation"
        );
    }

    #[test]
    fn issuer_refuses_non_https_query_fragment_userinfo() {
        use InvalidValueKind::*;
        assert_eq!(
            kind(Issuer::parse("http://auth.example.com")),
            InsecureScheme
        );
        assert_eq!(
            kind(Issuer::parse("http://localhost.evil.example")),
            InsecureScheme
        );
        assert_eq!(
            kind(Issuer::parse("ftp://auth.example.com")),
            UnsupportedScheme
        );
        assert_eq!(kind(Issuer::parse("https://a.example/?x=1")), HasQuery);
        assert_eq!(kind(Issuer::parse("https://a.example/?")), HasQuery);
        assert_eq!(kind(Issuer::parse("https://a.example/#")), HasFragment);
        assert_eq!(kind(Issuer::parse("https://u:p@a.example/")), HasUserinfo);
        assert_eq!(kind(Issuer::parse("auth.example.com")), NotAbsoluteUri);
        assert_eq!(kind(Issuer::parse("")), Empty);
        assert_eq!(kind(Issuer::parse(" https://a.example")), InvalidCharacter);
    }

    #[test]
    fn issuer_refuses_non_canonical_spellings() {
        for bad in [
            "HTTPS://a.example",
            "https://A.example",
            "https://a.example:443",
            "https://a.example/x/../y",
            "http://127.1",
        ] {
            assert_eq!(
                kind(Issuer::parse(bad)),
                InvalidValueKind::NotCanonical,
                "{bad}"
            );
        }
    }

    #[test]
    fn issuer_path_and_join() {
        let root = Issuer::parse("https://a.example").unwrap();
        assert_eq!(root.path(), "");
        assert_eq!(root.join("/token"), "https://a.example/token");
        let slash = Issuer::parse("https://a.example/").unwrap();
        assert_eq!(slash.path(), "");
        assert_eq!(slash.join("/token"), "https://a.example/token");
        let tenant = Issuer::parse("https://a.example/t1/").unwrap();
        assert_eq!(tenant.path(), "/t1");
        assert_eq!(tenant.join("/token"), "https://a.example/t1/token");
    }

    #[test]
    fn serde_round_trip_revalidates() {
        let issuer = Issuer::parse("https://a.example").unwrap();
        let json = serde_json::to_string(&issuer).unwrap();
        assert_eq!(json, r#""https://a.example""#);
        assert_eq!(serde_json::from_str::<Issuer>(&json).unwrap(), issuer);
        let err = serde_json::from_str::<Issuer>(r#""http://evil.example""#).unwrap_err();
        assert!(err.to_string().contains("invalid issuer"), "{err}");
        assert!(
            !err.to_string().contains("evil"),
            "errors do not echo values"
        );
    }

    #[test]
    fn client_id_and_subject_limits() {
        assert_eq!(kind(ClientId::parse("")), InvalidValueKind::Empty);
        assert_eq!(
            kind(ClientId::parse("a\nb")),
            InvalidValueKind::InvalidCharacter
        );
        assert!(ClientId::parse(&"a".repeat(2048)).is_ok());
        assert_eq!(
            kind(ClientId::parse(&"a".repeat(2049))),
            InvalidValueKind::TooLong
        );
        assert!(Subject::parse(&"1".repeat(255)).is_ok());
        assert_eq!(
            kind(Subject::parse(&"1".repeat(256))),
            InvalidValueKind::TooLong
        );
        assert_eq!(
            kind(Subject::parse("a b")),
            InvalidValueKind::InvalidCharacter
        );
    }

    #[test]
    fn client_id_metadata_document_form() {
        let yes = |s: &str| ClientId::parse(s).unwrap().is_metadata_document_url();
        assert!(yes("https://app.example/client.json"));
        assert!(yes("https://app.example:8443/c?v=1"));
        assert!(!yes("http://app.example/client.json"));
        assert!(!yes("https://app.example"));
        assert!(!yes("https://app.example/a/../client.json"));
        assert!(!yes("https://user@app.example/client.json"));
        assert!(!yes("https://app.example/client.json#frag"));
        assert!(!yes("https://APP.example/client.json"));
    }

    #[test]
    fn scope_syntax_per_rfc_6749() {
        use InvalidValueKind::*;
        assert_eq!(kind(Scope::parse("")), Empty);
        assert_eq!(kind(Scope::parse(" openid")), Malformed);
        assert_eq!(kind(Scope::parse("openid ")), Malformed);
        assert_eq!(kind(Scope::parse("openid  email")), Malformed);
        assert_eq!(kind(Scope::parse("openid\temail")), InvalidCharacter);
        assert_eq!(kind(Scope::parse("say\"hi\"")), InvalidCharacter);
        assert_eq!(kind(Scope::parse("back\\slash")), InvalidCharacter);
        assert_eq!(kind(Scope::parse("caf\u{e9}")), InvalidCharacter);
        assert_eq!(kind(Scope::parse(&"a".repeat(4097))), TooLong);
        assert_eq!(kind(Scope::parse(&vec!["a"; 257].join(" "))), TooLong);
        assert!(Scope::parse(&vec!["a"; 256].join(" ")).is_ok());
        assert_eq!(
            kind(Scope::from_tokens(std::iter::repeat_n("a", 1_000_000))),
            TooLong
        );
        let s = Scope::parse("openid memories:read !#[]~").unwrap();
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            ["openid", "memories:read", "!#[]~"]
        );
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn scope_is_an_ordered_set() {
        let s = Scope::parse("b a b c a").unwrap();
        assert_eq!(s.as_str(), "b a c");
        assert_eq!(s, Scope::parse("b a c").unwrap());
        assert!(!s.contains("B"), "case-sensitive");
        assert!(!s.contains("b a"));
        assert!(!s.contains(""));
    }

    #[test]
    fn scope_subset_only_narrows() {
        let granted = Scope::parse("openid memories:read").unwrap();
        assert!(
            Scope::parse("memories:read")
                .unwrap()
                .is_subset_of(&granted)
        );
        assert!(granted.is_subset_of(&granted));
        assert!(
            !Scope::parse("memories:read memories:write")
                .unwrap()
                .is_subset_of(&granted)
        );
        assert!(
            !Scope::parse("memories").unwrap().is_subset_of(&granted),
            "no prefix match"
        );
    }

    #[test]
    fn resource_indicator_normalises_only_scheme_and_host() {
        let r = |s: &str| ResourceIndicator::parse(s).unwrap().as_str().to_owned();
        assert_eq!(
            r("HTTPS://API.Example.COM/Mcp/"),
            "https://api.example.com/Mcp/"
        );
        assert_eq!(
            r("https://api.example.com:8443/a?B=C"),
            "https://api.example.com:8443/a?B=C"
        );
        assert_eq!(
            r("https://api.example.com"),
            "https://api.example.com",
            "no slash added"
        );
        assert_eq!(r("urn:Example:Resource"), "urn:Example:Resource");
        assert_ne!(
            r("https://api.example.com/mcp"),
            r("https://api.example.com/mcp/")
        );
    }

    #[test]
    fn resource_indicator_refuses_fragment_relative_userinfo() {
        use InvalidValueKind::*;
        assert_eq!(
            kind(ResourceIndicator::parse("https://a.example/#")),
            HasFragment
        );
        assert_eq!(kind(ResourceIndicator::parse("/relative")), NotAbsoluteUri);
        assert_eq!(
            kind(ResourceIndicator::parse("https://u@a.example/")),
            HasUserinfo
        );
        assert_eq!(
            kind(ResourceIndicator::parse("https://a.example/ x")),
            InvalidCharacter
        );
    }
}
