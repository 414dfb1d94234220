//! Server-rendered pages (login, consent, errors): no JavaScript, escaped text, strict
//! security headers, readable on a phone.

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_FRAME_OPTIONS,
};
use http::{HeaderValue, Response, StatusCode};

/// Escapes text for HTML element content and double-quoted attribute values.
///
/// ```
/// assert_eq!(oidc_core::html::escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}\
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.6rem;font-size:1rem;box-sizing:border-box}\
button{padding:.7rem 1.2rem;font-size:1rem;margin:.8rem .5rem 0 0;cursor:pointer}.primary{background:#1a56db;color:#fff;border:0;border-radius:.3rem}\
.secondary{background:#fff;border:1px solid #999;border-radius:.3rem}.error{color:#b91c1c}.muted{color:#555;font-size:.9rem}code{word-break:break-all}";

/// A complete HTML page. `body_html` must already be escaped where it holds user data.
pub fn page(status: StatusCode, title: &str, body_html: &str) -> Response<Bytes> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body>{body_html}</body></html>",
        escape(title)
    );
    let mut response = Response::new(Bytes::from(html));
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
        &format!(
            "<h1>{}</h1><p class=\"error\">{}</p>",
            escape(title),
            escape(message)
        ),
    )
}

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
}
