//! The pages and redirects shared by the browser-facing endpoints (authorization, login
//! chooser, consent): error pages that never redirect, error redirects to a trusted
//! client, and where a redirect URI leads. It imports no endpoint.

use bytes::Bytes;
use http::{Response, StatusCode};
use url::form_urlencoded;

use super::errors::OAuthError;
use crate::html;
use crate::redirect::RedirectUri;
use crate::types::Issuer;

/// What a browser-facing endpoint (authorization, login chooser, consent, a finished
/// login) answers; the router turns it into HTTP.
#[derive(Debug)]
pub(crate) enum BrowserAnswer {
    /// A page: a login method's, the chooser, the consent page, or an error page with a
    /// link.
    Page(Response<Bytes>),
    /// A redirect to `location`: 302 after a GET, 303 after a POST.
    Redirect {
        status: StatusCode,
        location: String,
    },
    /// An error page; never a redirect.
    Error(ErrorPage),
}

/// An error page with a fixed title and message; never a redirect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorPage {
    pub(crate) status: StatusCode,
    pub(crate) title: &'static str,
    pub(crate) message: &'static str,
}

impl From<ErrorPage> for BrowserAnswer {
    fn from(page: ErrorPage) -> BrowserAnswer {
        BrowserAnswer::Error(page)
    }
}

/// 400: the request cannot be completed (never a redirect).
pub(crate) fn bad_request_page(message: &'static str) -> ErrorPage {
    ErrorPage {
        status: StatusCode::BAD_REQUEST,
        title: "This request cannot be completed",
        message,
    }
}

/// 403: a form from another site, or with a wrong CSRF token.
pub(crate) fn refused_page(message: &'static str) -> ErrorPage {
    ErrorPage {
        status: StatusCode::FORBIDDEN,
        title: "Request refused",
        message,
    }
}

/// 400: the sign-in transaction is gone.
pub(crate) fn expired_page() -> ErrorPage {
    ErrorPage {
        status: StatusCode::BAD_REQUEST,
        title: "This sign-in has expired",
        message: "Go back to the application and start again.",
    }
}

/// 503: the store failed.
pub(crate) fn unavailable_page() -> ErrorPage {
    ErrorPage {
        status: StatusCode::SERVICE_UNAVAILABLE,
        title: "Temporarily unavailable",
        message: "Please try again in a moment.",
    }
}

/// A redirect to the client with an error, `state` and `iss` (RFC 9207): `status` is 302
/// after a GET and 303 after a POST.
pub(crate) fn error_redirect(
    issuer: &Issuer,
    redirect_uri: &RedirectUri,
    state: Option<&str>,
    error: OAuthError,
    status: StatusCode,
) -> BrowserAnswer {
    let mut params = vec![
        ("error", error.code().as_str()),
        ("error_description", error.description()),
    ];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer.as_str()));
    BrowserAnswer::Redirect {
        status,
        location: redirect_location(redirect_uri, &params),
    }
}

/// The error page shown instead of an error redirect to a self-registered client: the
/// error, the host the client's redirect URI leads to, and the redirect as a link the user
/// may follow (it carries the same `error`, `state` and `iss` the redirect would have).
pub(crate) fn untrusted_error_page(
    issuer: &Issuer,
    redirect_uri: &RedirectUri,
    state: Option<&str>,
    error: OAuthError,
) -> BrowserAnswer {
    let mut params = vec![
        ("error", error.code().as_str()),
        ("error_description", error.description()),
    ];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer.as_str()));
    let location = redirect_location(redirect_uri, &params);
    let destination = Destination::of(redirect_uri);
    let host = destination.label.as_str();
    let title = "This request cannot be completed";
    let body = maud::html! {
        h1 { (title) }
        p.error {
            "The application's request was refused: " (error.description())
            " (" code { (error.code().as_str()) } ")."
        }
        p {
            "The application registered itself with this server, so you are not sent back \
             to it automatically. It asked to return you to " strong { (host) } "."
        }
        p {
            a href=(location) { "Return to " (host) }
            " only if you trust it; otherwise close this page."
        }
    };
    BrowserAnswer::Page(html::page(StatusCode::BAD_REQUEST, title, &body))
}

/// `redirect_uri` with `params` appended to its query (it has no fragment).
pub(crate) fn redirect_location(redirect_uri: &RedirectUri, params: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    let query = serializer.finish();
    let base = redirect_uri.as_str();
    let separator = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{base}{separator}{query}")
}

/// Where the browser goes after consent, for people and for the CSP.
pub(crate) struct Destination {
    /// `host[:port]`, or the scheme of a native app.
    pub(crate) label: String,
    /// The CSP source allowing the redirect: an origin, or `scheme:`.
    pub(crate) csp_source: String,
    pub(crate) loopback: bool,
}

impl Destination {
    pub(crate) fn of(redirect_uri: &RedirectUri) -> Destination {
        let fallback = || Destination {
            label: redirect_uri.as_str().to_owned(),
            csp_source: String::new(),
            loopback: redirect_uri.is_loopback(),
        };
        let Ok(url) = url::Url::parse(redirect_uri.as_str()) else {
            return fallback();
        };
        if redirect_uri.is_private_use_scheme() {
            return Destination {
                label: format!("the app that opens {}: links", url.scheme()),
                csp_source: format!("{}:", url.scheme()),
                loopback: false,
            };
        }
        let Some(host) = url.host_str() else {
            return fallback();
        };
        let label = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let origin = url.origin().ascii_serialization();
        // An origin has no characters that could break out of the CSP header.
        let csp_source = if origin
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        {
            origin
        } else {
            String::new()
        };
        Destination {
            label,
            csp_source,
            loopback: redirect_uri.is_loopback(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(uri: &str) -> Destination {
        Destination::of(&RedirectUri::parse(uri).unwrap())
    }

    #[test]
    fn destinations_name_the_host_and_allow_only_its_origin() {
        let web = destination("https://chatgpt.com/connector/oauth/abc?x=1");
        assert_eq!(web.label, "chatgpt.com");
        assert_eq!(web.csp_source, "https://chatgpt.com");
        assert!(!web.loopback);

        let port = destination("https://app.example:8443/cb");
        assert_eq!(port.label, "app.example:8443");
        assert_eq!(port.csp_source, "https://app.example:8443");

        let native = destination("http://127.0.0.1:51234/cb");
        assert_eq!(native.label, "127.0.0.1:51234");
        assert!(native.loopback);

        let app = destination("com.example.app:/oauth2redirect");
        assert_eq!(app.csp_source, "com.example.app:");
        assert!(app.label.contains("com.example.app"));
    }

    #[test]
    fn parameters_are_appended_to_an_existing_query() {
        let plain = RedirectUri::parse("https://app.example/cb").unwrap();
        assert_eq!(
            redirect_location(&plain, &[("code", "a b"), ("state", "x&y")]),
            "https://app.example/cb?code=a+b&state=x%26y"
        );
        let with_query = RedirectUri::parse("https://app.example/cb?tenant=1").unwrap();
        assert_eq!(
            redirect_location(&with_query, &[("code", "c")]),
            "https://app.example/cb?tenant=1&code=c"
        );
    }
}
