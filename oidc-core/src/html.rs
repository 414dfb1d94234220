//! Server-rendered pages (login, consent, errors): no JavaScript, escaped text, strict
//! security headers, readable on a phone.
//!
//! Pages are [maud] templates: the markup is checked at compile time and every value
//! interpolated with `(value)` is escaped, so no page is assembled from raw strings.

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_FRAME_OPTIONS,
};
use http::{HeaderValue, Response, StatusCode};
pub use maud::Markup;
use maud::{DOCTYPE, PreEscaped, html};

/// A complete HTML page around `body`, with the security headers every page is sent with.
///
/// ```
/// use http::StatusCode;
/// use maud::html;
///
/// let name = "<script>";
/// let page = oidc_core::html::page(StatusCode::OK, "Hello", &html! { p { "Hi " (name) } });
/// assert_eq!(page.headers()["x-frame-options"], "DENY");
/// assert!(String::from_utf8_lossy(page.body()).contains("<p>Hi &lt;script&gt;</p>"));
/// ```
pub fn page(status: StatusCode, title: &str, body: &Markup) -> Response<Bytes> {
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) }
                // A constant of this file, not data: `<style>` content is not escaped.
                style { (PreEscaped(STYLE)) }
            }
            body { (*body) }
        }
    };
    let mut response = Response::new(Bytes::from(html.into_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// An error page: never a redirect (used when the client or redirect URI cannot be trusted).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response<Bytes> {
    page(
        status,
        title,
        &html! {
            h1 { (title) }
            p.error { (message) }
        },
    )
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}\
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.6rem;font-size:1rem;box-sizing:border-box}\
button{padding:.7rem 1.2rem;font-size:1rem;margin:.8rem .5rem 0 0;cursor:pointer}.primary{background:#1a56db;color:#fff;border:0;border-radius:.3rem}\
.secondary{background:#fff;border:1px solid #999;border-radius:.3rem}.error{color:#b91c1c}.muted{color:#555;font-size:.9rem}code{word-break:break-all}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_locked_down() {
        let p = error_page(
            StatusCode::BAD_REQUEST,
            "Bad <request>",
            "client \"x\" unknown",
        );
        assert_eq!(p.status(), 400);
        assert!(
            p.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert_eq!(p.headers()["x-frame-options"], "DENY");
        let body = String::from_utf8(p.body().to_vec()).unwrap();
        assert!(body.contains("Bad &lt;request&gt;"));
        assert!(body.contains("client &quot;x&quot; unknown"));
        assert!(!body.contains("<script"));
    }

    #[test]
    fn the_page_frame_is_unchanged() {
        let p = page(StatusCode::OK, "T & <t>", &html! { p { "x" } });
        let body = String::from_utf8(p.body().to_vec()).unwrap();
        assert_eq!(
            body,
            format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
                 <title>T &amp; &lt;t&gt;</title><style>{STYLE}</style></head>\
                 <body><p>x</p></body></html>"
            )
        );
    }
}
