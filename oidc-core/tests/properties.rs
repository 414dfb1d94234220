//! Property-based tests of redirect-URI matching and of the provider's form and query
//! parsing (through the provider's own endpoints: the parsers are private).
//!
//! Each property names what must hold for every generated input. The default run is short
//! (CI); a longer one is `PROPTEST_CASES=100000 cargo test --release -p oidc-core --test
//! properties`. A failure prints the minimal failing input: turn it into a named
//! regression test (no `proptest-regressions/` files are written).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod provider_common;

use std::collections::HashMap;
use std::fmt::Debug;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use oidc_core::redirect::{RedirectUri, match_requested};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use provider_common::*;
use serde_json::Value;
use url::form_urlencoded;

/// `cases` per property unless `PROPTEST_CASES` says otherwise; never writes failure files.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}

// ---------------------------------------------------------------------------------------
// Redirect URIs

/// The characters RFC 3986 allows in a URI, and a few it does not.
const URI_CHARS: &str = "[A-Za-z0-9._~:/?\\[\\]@!$&'()*+,;=%#-]";

fn path() -> impl Strategy<Value = String> {
    "(/[A-Za-z0-9._~!$&'()+,;=:@%-]{0,8}){0,3}"
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\?[A-Za-z0-9._~!$&'()+,;=:@/?%-]{0,12}"
    ]
}

fn port() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        (0u32..70_000).prop_map(|p| format!(":{p}"))
    ]
}

/// A redirect URI a client could register: `https`, `http` loopback, or private-use.
fn registrable() -> impl Strategy<Value = RedirectUri> {
    prop_oneof![
        (
            "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,2}",
            port(),
            path(),
            query()
        )
            .prop_map(|(host, port, path, query)| format!("https://{host}{port}{path}{query}")),
        (
            prop::sample::select(&["127.0.0.1", "[::1]", "localhost"][..]),
            port(),
            path(),
            query()
        )
            .prop_map(|(host, port, path, query)| format!("http://{host}{port}{path}{query}")),
        ("[a-z]{2,6}\\.[a-z]{2,6}(\\.[a-z]{2,6})?", path(), query())
            .prop_map(|(scheme, path, query)| format!("{scheme}:{path}{query}")),
    ]
    .prop_filter_map("not registrable", |raw| RedirectUri::parse(&raw).ok())
}

/// `(host, path-and-query)` of an `http` loopback URI, by a reading independent of the
/// crate's: `http://`, a loopback host exactly as written, an optional port, the rest.
fn loopback_parts(raw: &str) -> Option<(&str, &str)> {
    let rest = raw.strip_prefix("http://")?;
    let host = ["127.0.0.1", "[::1]", "localhost"]
        .into_iter()
        .find(|host| rest.starts_with(host))?;
    let after = &rest[host.len()..];
    let tail = match after.strip_prefix(':') {
        Some(port) => port.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => after,
    };
    (tail.is_empty() || tail.starts_with(['/', '?'])).then_some((host, tail))
}

/// One character edit of a URI: replace, insert or delete, with URI characters or any.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, char),
    Insert(Index, char),
    Delete(Index),
    Uppercase(Index),
    PercentEncode(Index),
}

fn uri_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => URI_CHARS.prop_map(|s| s.chars().next().unwrap()),
        1 => any::<char>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), uri_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<Index>(), uri_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<Index>().prop_map(Edit::Delete),
        any::<Index>().prop_map(Edit::Uppercase),
        any::<Index>().prop_map(Edit::PercentEncode),
    ]
}

fn apply(raw: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = raw.chars().collect();
    match edit {
        Edit::Replace(at, c) => {
            let at = at.index(chars.len());
            chars[at] = *c;
        }
        Edit::Insert(at, c) => chars.insert(at.index(chars.len() + 1), *c),
        Edit::Delete(at) => {
            chars.remove(at.index(chars.len()));
        }
        Edit::Uppercase(at) => {
            let at = at.index(chars.len());
            chars[at] = chars[at].to_ascii_uppercase();
        }
        Edit::PercentEncode(at) => {
            let at = at.index(chars.len());
            let encoded: Vec<char> = format!("%{:02X}", u32::from(chars[at]) & 0xff)
                .chars()
                .collect();
            chars.splice(at..=at, encoded);
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config(2048))]

    /// Parsing any string never panics, and what it accepts obeys the documented rules:
    /// stored exactly as given; no fragment, wildcard, userinfo, space, control, non-ASCII
    /// or `\`; `https` with a host, `http` only to a loopback host written exactly, or a
    /// private-use scheme with a `.`.
    #[test]
    fn redirect_uri_parsing_accepts_only_the_documented_forms(
        raw in prop_oneof![
            any::<String>(),
            proptest::string::string_regex(&format!(
                "(https?|HTTPS?|[a-z]{{1,5}}(\\.[a-z]{{1,5}})?):(//)?{URI_CHARS}{{0,40}}"
            ))
            .unwrap(),
            (registrable(), edit()).prop_map(|(uri, edit)| apply(uri.as_str(), &edit)),
        ],
    ) {
        let Ok(uri) = RedirectUri::parse(&raw) else {
            return Ok(());
        };
        prop_assert_eq!(uri.as_str(), raw.as_str());
        prop_assert!(!raw.contains(['#', '*', '\\']), "{raw}");
        prop_assert!(raw.bytes().all(|b| b.is_ascii_graphic()), "{raw:?}");
        let (scheme, rest) = raw.split_once(':').unwrap();
        let authority = rest
            .strip_prefix("//")
            .map(|r| r.split(['/', '?']).next().unwrap_or_default());
        prop_assert!(!authority.unwrap_or_default().contains('@'), "{raw}");
        match scheme {
            "https" => {
                prop_assert!(authority.is_some_and(|a| !a.is_empty() && !a.starts_with(':')), "{raw}");
                prop_assert!(!uri.is_loopback() && !uri.is_private_use_scheme());
            }
            "http" => {
                prop_assert!(loopback_parts(&raw).is_some(), "{raw}");
                prop_assert!(uri.is_loopback());
            }
            _ => {
                prop_assert!(scheme.contains('.') && uri.is_private_use_scheme(), "{raw}");
            }
        }
    }

    /// Matching is exact: a one-character edit of a registered URI (including case changes
    /// and percent-encoding a character) matches only if it left the string unchanged or,
    /// for an `http` loopback URI, changed nothing but the port. A match returns the
    /// requested URI itself.
    #[test]
    fn matching_is_exact_apart_from_the_loopback_port(registered in registrable(), edit in edit()) {
        let requested = apply(registered.as_str(), &edit);
        let matched = match_requested([&registered], &requested);
        let port_only = registered.is_loopback()
            && RedirectUri::parse(&requested).is_ok()
            && loopback_parts(registered.as_str()).is_some()
            && loopback_parts(registered.as_str()) == loopback_parts(&requested);
        let expected = requested == registered.as_str() || port_only;
        prop_assert_eq!(matched.is_some(), expected, "{} vs {}", registered, requested);
        if let Some(matched) = matched {
            prop_assert_eq!(matched.as_str(), requested.as_str());
        }
    }

    /// Loopback port variance: an `http` loopback URI matches itself with any port, and
    /// never the same URI on another loopback host or over `https`.
    #[test]
    fn loopback_rules_hold(
        host in prop::sample::select(&["127.0.0.1", "[::1]", "localhost"][..]),
        other_host in prop::sample::select(&["127.0.0.1", "[::1]", "localhost"][..]),
        registered_port in port(),
        requested_port in 0u32..=65_535,
        path in path(),
        query in query(),
    ) {
        let raw = format!("http://{host}{registered_port}{path}{query}");
        let Ok(registered) = RedirectUri::parse(&raw) else {
            return Ok(());
        };
        let requested = format!("http://{host}:{requested_port}{path}{query}");
        let matched = match_requested([&registered], &requested);
        prop_assert_eq!(matched.map(|m| m.as_str().to_owned()), Some(requested));
        if other_host != host {
            let elsewhere = format!("http://{other_host}:{requested_port}{path}{query}");
            prop_assert!(match_requested([&registered], &elsewhere).is_none());
        }
        let secure = format!("https://{host}:{requested_port}{path}{query}");
        prop_assert!(match_requested([&registered], &secure).is_none());
    }

    /// `matches` is reflexive and symmetric on everything that parses.
    #[test]
    fn matching_is_reflexive_and_symmetric(a in registrable(), b in registrable(), edit in edit()) {
        prop_assert!(a.matches(&a));
        prop_assert_eq!(a.matches(&b), b.matches(&a));
        if let Ok(c) = RedirectUri::parse(&apply(a.as_str(), &edit)) {
            prop_assert_eq!(a.matches(&c), c.matches(&a));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Form and query parsing, through the provider

/// Runs `test` for `cases` values of `strategy` against one provider.
fn with_provider<S>(
    cases: u32,
    strategy: S,
    test: impl Fn(&TestProvider, S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    // Multi-threaded, so `Handle::block_on` inside the test drives timers and I/O too.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let provider = runtime.block_on(start());
    let mut runner = TestRunner::new(config(cases));
    if let Err(failure) = runner.run(&strategy, |value| test(&provider, value)) {
        panic!("{failure}");
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(future)
}

/// A parameter set that looks almost right: known names with good, empty, repeated or
/// arbitrary values, and unknown names.
fn params(
    names: &'static [&'static str],
    good: &'static [&'static str],
) -> impl Strategy<Value = Vec<(String, String)>> {
    let value = prop_oneof![
        3 => prop::sample::select(good).prop_map(str::to_owned),
        1 => Just(String::new()),
        2 => any::<String>(),
        1 => "[A-Za-z0-9._~-]{43,128}",
    ];
    let name = prop_oneof![
        4 => prop::sample::select(names).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    prop::collection::vec((name, value), 0..12)
}

/// Form-encodes `pairs`, then appends raw text that may not be valid form encoding.
fn encode(pairs: &[(String, String)], raw: &str) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    let mut encoded = serializer.finish();
    if !raw.is_empty() {
        encoded.push('&');
        encoded.push_str(raw);
    }
    encoded
}

const AUTHORIZE_NAMES: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "prompt",
    "response_mode",
    "login_hint",
    "max_age",
    "request",
];

const AUTHORIZE_VALUES: &[&str] = &[
    "code",
    "token",
    PUBLIC,
    CONF,
    NO_REFRESH,
    PUBLIC_REDIRECT,
    PUBLIC_LOOPBACK,
    "http://127.0.0.1:5000/callback",
    CONFIDENTIAL_REDIRECT,
    "https://evil.example/landing",
    "openid profile email offline_access memories:read",
    "memories:write",
    "S256",
    "plain",
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    RESOURCE,
    OTHER_RESOURCE,
    "none",
    "login consent",
];

/// Where a provider may send a browser: its own paths, or a client's registered redirect
/// URI (the loopback one with any port).
fn is_allowed_location(location: &str) -> bool {
    if location.starts_with('/') && !location.starts_with("//") && !location.starts_with("/\\") {
        return true;
    }
    let registered = [PUBLIC_REDIRECT, CONFIDENTIAL_REDIRECT, NO_REFRESH_REDIRECT];
    if registered.iter().any(|uri| {
        location
            .strip_prefix(uri)
            .is_some_and(|rest| rest.starts_with('?'))
    }) {
        return true;
    }
    location
        .strip_prefix("http://127.0.0.1")
        .map(|rest| {
            rest.strip_prefix(':')
                .map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
        })
        .is_some_and(|rest| rest.starts_with("/callback?"))
}

/// RFC 6749 §5.2 and RFC 7009/7662 error codes a token-style endpoint may answer.
const TOKEN_ERRORS: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
];

const TOKEN_NAMES: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "client_id",
    "client_secret",
    "refresh_token",
    "scope",
    "resource",
];

const TOKEN_VALUES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    PUBLIC,
    CONF,
    CONFIDENTIAL_SECRET,
    PUBLIC_REDIRECT,
    RESOURCE,
    "memories:read",
    "openid",
];

fn raw_form() -> impl Strategy<Value = String> {
    "[A-Za-z0-9%&=+._~-]{0,40}"
}

/// `text` form-encoded in one of the many equivalent ways: each character as is, as `%XX`
/// in either case, or a space as `+`; `%`, `+` and any `extra` character are always escaped.
fn any_form_encoding(text: &str, extra: char) -> impl Strategy<Value = String> + use<> {
    let chars: Vec<char> = text.chars().collect();
    prop::collection::vec(0u8..3, chars.len()).prop_map(move |choices| {
        let mut out = String::new();
        for (c, choice) in chars.iter().zip(choices) {
            let must_escape = matches!(*c, '%' | '+') || *c == extra || !c.is_ascii();
            match (choice, *c) {
                (0, ' ') => out.push('+'),
                (0, c) if !must_escape => out.push(c),
                (1, c) if !must_escape => out.push(c),
                (choice, c) => {
                    let mut utf8 = [0; 4];
                    for byte in c.encode_utf8(&mut utf8).bytes() {
                        if choice == 2 {
                            out.push_str(&format!("%{byte:02x}"));
                        } else {
                            out.push_str(&format!("%{byte:02X}"));
                        }
                    }
                }
            }
        }
        out
    })
}

/// A valid authorization request of one of the clients (or with a foreign redirect URI)
/// with some parameters left out and almost-right or arbitrary ones added.
fn authorize_query() -> impl Strategy<Value = String> {
    let client = prop::sample::select(
        &[
            (PUBLIC, PUBLIC_REDIRECT),
            (PUBLIC, "http://127.0.0.1:5000/callback"),
            (CONF, CONFIDENTIAL_REDIRECT),
            (NO_REFRESH, NO_REFRESH_REDIRECT),
            (PUBLIC, "https://evil.example/landing"),
        ][..],
    );
    (
        client,
        prop::collection::vec(prop::bool::weighted(0.85), 8),
        params(AUTHORIZE_NAMES, AUTHORIZE_VALUES),
        raw_form(),
    )
        .prop_map(|((client_id, redirect_uri), keep, extra, raw)| {
            let standard = [
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("scope", "openid memories:read"),
                ("state", "xyz"),
                ("nonce", "n-0S6"),
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "S256"),
            ];
            let mut pairs: Vec<(String, String)> = standard
                .iter()
                .zip(keep)
                .filter(|(_, keep)| *keep)
                .map(|((name, value), _)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
            pairs.extend(extra);
            encode(&pairs, &raw)
        })
}

#[test]
fn authorize_with_any_query_answers_without_an_open_redirect_or_a_server_error() {
    with_provider(256, authorize_query(), |p, query| {
        let uri = format!("/authorize?{query}");
        prop_assume!(http::Uri::try_from(uri.as_str()).is_ok());
        let response = block_on(p.get(&uri));
        prop_assert!(
            !response.status.is_server_error(),
            "{}: {}",
            response.status,
            response.text()
        );
        if response.status.is_redirection() {
            let location = response.location();
            prop_assert!(is_allowed_location(location), "redirected to {location}");
        }
        Ok(())
    });
}

#[test]
fn token_endpoint_answers_any_form_with_an_oauth_error() {
    let authorization = prop_oneof![
        Just(None),
        (".{0,12}", ".{0,12}").prop_map(|(id, secret)| Some(basic(&id, &secret))),
        any::<Vec<u8>>().prop_map(|bytes| Some(format!("Basic {}", STANDARD.encode(bytes)))),
    ];
    let strategy = (params(TOKEN_NAMES, TOKEN_VALUES), raw_form(), authorization);
    with_provider(256, strategy, |p, (pairs, raw, authorization)| {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri("/token")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(authorization) = authorization {
            builder = builder.header("authorization", authorization);
        }
        let body = Full::new(Bytes::from(encode(&pairs, &raw)));
        let response = block_on(p.send(builder.body(body).unwrap()));
        prop_assert!(
            matches!(
                response.status,
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
            ),
            "{}: {}",
            response.status,
            response.text()
        );
        let json: Value = serde_json::from_slice(&response.body).unwrap();
        let error = json["error"].as_str().unwrap_or_default();
        prop_assert!(TOKEN_ERRORS.contains(&error), "{json}");
        Ok(())
    });
}

#[test]
fn state_round_trips_through_an_error_redirect() {
    // Any non-empty `state` up to the limit, encoded by the client, comes back decoded to
    // the same string (RFC 6749 §4.1.2.1).
    let strategy = prop_oneof![any::<String>(), "[ -~]{1,64}", ".{1,500}"]
        .prop_filter("state", |s| !s.is_empty() && s.len() <= 2048);
    with_provider(256, strategy, |p, state| {
        let pkce = pkce();
        let mut params = TestProvider::authorize_params(PUBLIC, PUBLIC_REDIRECT, &pkce);
        params.retain(|(name, _)| *name != "state" && *name != "response_type");
        params.push(("response_type", "token"));
        params.push(("state", &state));
        let response = block_on(p.authorize(&params));
        prop_assert_eq!(response.status, StatusCode::FOUND, "{}", response.text());
        let location: HashMap<String, String> = response.location_params();
        prop_assert_eq!(
            location.get("error").map(String::as_str),
            Some("unsupported_response_type")
        );
        prop_assert_eq!(location.get("state"), Some(&state));
        Ok(())
    });
}

#[test]
fn state_round_trips_through_an_approved_authorization() {
    let strategy =
        prop_oneof![any::<String>(), "[ -~]{1,64}"].prop_filter("state", |s| !s.is_empty());
    with_provider(24, strategy, |p, state| {
        let pkce = pkce();
        let mut params = TestProvider::authorize_params(PUBLIC, PUBLIC_REDIRECT, &pkce);
        params.retain(|(name, _)| *name != "state");
        params.push(("state", &state));
        let location = block_on(p.authorize_and_approve(&params));
        prop_assert_eq!(location.get("state"), Some(&state));
        prop_assert!(location.contains_key("code"));
        Ok(())
    });
}

#[test]
fn basic_credentials_in_any_form_encoding_authenticate() {
    // RFC 6749 §2.3.1: the client id and secret are form-encoded before base64; every
    // spelling of the same credentials authenticates, and changing the secret never does.
    let strategy = (
        any_form_encoding(CONF, ':'),
        any_form_encoding(CONFIDENTIAL_SECRET, '\0'),
        prop::option::of((any::<Index>(), any::<char>())),
    );
    with_provider(128, strategy, |p, (id, secret, change)| {
        let mut secret_text = CONFIDENTIAL_SECRET.to_owned();
        let mut secret = secret;
        if let Some((at, c)) = change {
            let mut chars: Vec<char> = secret_text.chars().collect();
            let at = at.index(chars.len());
            if chars[at] == c {
                return Ok(());
            }
            chars[at] = c;
            secret_text = chars.into_iter().collect();
            secret = form_urlencoded::byte_serialize(secret_text.as_bytes()).collect();
        }
        let header = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        let response = block_on(p.post_form(
            "/introspect",
            &[("token", "not-a-token")],
            &[("authorization", &header)],
        ));
        if secret_text == CONFIDENTIAL_SECRET {
            prop_assert_eq!(response.status, StatusCode::OK, "{}", response.text());
            prop_assert_eq!(response.json()["active"].clone(), Value::Bool(false));
        } else {
            prop_assert_eq!(
                response.status,
                StatusCode::UNAUTHORIZED,
                "{}",
                response.text()
            );
        }
        Ok(())
    });
}
