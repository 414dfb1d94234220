//! The authorization code flow with PKCE and password login, run over sockets the way a
//! browser and an app run it: authorize, the login form, the consent form, the code.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oidc_core::pkce::CodeVerifier;

/// A response's status, `Location` and body text.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One request over a fresh connection.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client
        .request(request)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// A form `POST`.
pub async fn post_form(url: &str, headers: &[(&str, &str)], pairs: &[(&str, &str)]) -> Answer {
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    send("POST", url, &all, &form(pairs)).await
}

/// `application/x-www-form-urlencoded`, every byte but the unreserved ones escaped.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the hidden field `name` of a page.
pub fn hidden(html: &str, name: &str) -> String {
    attribute(html, &format!("name=\"{name}\" value=\""))
}

/// The text after `marker` up to the next `"` (the pages escape `"` inside values).
pub fn attribute(html: &str, marker: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

/// What to ask the provider at `base` for.
pub struct CodeRequest<'a> {
    pub base: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    /// `resource` (RFC 8707), if any.
    pub resource: Option<&'a str>,
    pub username: &'a str,
    pub password: &'a str,
}

/// What [`authorization_code`] got.
pub struct Authorization {
    pub code: String,
    pub verifier: CodeVerifier,
    /// The consent page's HTML.
    pub consent_page: String,
}

/// Signs in with the password form, approves the consent page and returns the code with
/// its PKCE verifier, checking each step's status.
pub async fn authorization_code(request: &CodeRequest<'_>) -> Authorization {
    let base = request.base;
    let verifier = CodeVerifier::generate(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let challenge = verifier.challenge().as_base64url();
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", request.client_id),
        ("redirect_uri", request.redirect_uri),
        ("scope", request.scope),
        ("state", "s-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if let Some(resource) = request.resource {
        query.push(("resource", resource));
    }
    let login_page = send(
        "GET",
        &format!("{base}/authorize?{}", form(&query)),
        &[],
        "",
    )
    .await;
    assert_eq!(login_page.status, 200, "{}", login_page.body);
    let action = attribute(&login_page.body, "action=\"");
    let action = if action.starts_with('/') {
        format!("{base}{action}")
    } else {
        action
    };
    let signed_in = post_form(
        &action,
        &[("origin", base)],
        &[
            ("transaction", &hidden(&login_page.body, "transaction")),
            ("csrf", &hidden(&login_page.body, "csrf")),
            ("username", request.username),
            ("password", request.password),
        ],
    )
    .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let approved = post_form(
        &format!("{base}/consent"),
        &[("origin", base)],
        &[
            ("tx", &hidden(&signed_in.body, "tx")),
            ("csrf", &hidden(&signed_in.body, "csrf")),
            ("decision", "approve"),
        ],
    )
    .await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    let location = approved.location.unwrap();
    assert!(location.starts_with(request.redirect_uri), "{location}");
    // Codes are base64url: no percent-decoding needed.
    let code = location
        .split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix("code="))
        .unwrap()
        .to_owned();
    Authorization {
        code,
        verifier,
        consent_page: signed_in.body,
    }
}
