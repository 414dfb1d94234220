//! URL rules for key sources: absolute `https`, or `http` only to a loopback host.

use std::net::IpAddr;

use http::Uri;

use crate::error::BuildError;

/// Parses `url` and checks it is safe to fetch keys from.
///
/// A URL with userinfo (`https://user:password@host/...`) is refused: credentials in a URL
/// end up in logs and error messages. Errors carry the URL only in its [`redacted`] form.
pub(crate) fn key_source_url(url: &str) -> Result<Uri, BuildError> {
    let insecure = || BuildError::InsecureUrl(redacted(url));
    let uri: Uri = url.parse().map_err(|_| insecure())?;
    if uri
        .authority()
        .is_some_and(|authority| authority.as_str().contains('@'))
    {
        return Err(BuildError::CredentialsInUrl);
    }
    let host = uri.host().ok_or_else(insecure)?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback_host(host) => Ok(uri),
        _ => Err(insecure()),
    }
}

/// `url` as it may appear in logs and errors: scheme, host, port and path, at most 200
/// characters. Userinfo, query and fragment (where credentials and API keys live) are
/// dropped. Works on any string, parsed or not.
pub(crate) fn redacted(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_userinfo, host)| host);
    let mut out = String::with_capacity(url.len().min(200));
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(host);
    out.push_str(path);
    out.chars().take(200).collect()
}

/// `localhost`, `127.0.0.0/8` or `[::1]`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `{issuer}/.well-known/openid-configuration` (RFC 8414 §5 / OIDC Discovery §4).
pub(crate) fn discovery_url(issuer: &str) -> Result<Uri, BuildError> {
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    key_source_url(&format!("{base}/.well-known/openid-configuration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert!(key_source_url("https://issuer.example/jwks").is_ok());
        assert!(key_source_url("http://127.0.0.1:8766/jwks").is_ok());
        assert!(key_source_url("http://127.8.9.10/jwks").is_ok());
        assert!(key_source_url("http://localhost:1/jwks").is_ok());
        assert!(key_source_url("http://[::1]:80/jwks").is_ok());
        assert!(key_source_url("http://issuer.example/jwks").is_err());
        assert!(key_source_url("http://10.0.0.1/jwks").is_err());
        assert!(key_source_url("ftp://issuer.example/jwks").is_err());
        assert!(key_source_url("/jwks").is_err());
        assert!(key_source_url("not a url").is_err());
    }

    #[test]
    fn attack_userinfo_in_key_source_url_is_refused() {
        for url in [
            "https://user:pass@issuer.example/jwks",
            "https://user@issuer.example/jwks",
            "https://:secret@issuer.example/jwks",
            "http://user:pass@127.0.0.1:8080/jwks",
            "https://user:pass@issuer.example",
            "https://user:p%40ss@issuer.example/jwks?key=secret",
        ] {
            assert_eq!(
                key_source_url(url).unwrap_err(),
                BuildError::CredentialsInUrl,
                "{url}"
            );
        }
        // An `@` after the authority is not userinfo.
        assert!(key_source_url("https://issuer.example/keys/a@b").is_ok());
        assert!(key_source_url("https://issuer.example/jwks?contact=a@b").is_ok());
    }

    #[test]
    fn attack_credentials_in_url_do_not_reach_errors() {
        for url in [
            "http://user:hunter2@issuer.example/jwks?api_key=hunter2",
            "ftp://issuer.example/jwks?api_key=hunter2#hunter2",
            "http://issuer.example/jwks?api_key=hunter2",
            "not a url with user:hunter2@ in it?api_key=hunter2",
        ] {
            let err = key_source_url(url).unwrap_err();
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
            }
        }
        assert_eq!(
            key_source_url("http://issuer.example/jwks?api_key=hunter2").unwrap_err(),
            BuildError::InsecureUrl("http://issuer.example/jwks".to_owned())
        );
    }

    #[test]
    fn redacted_keeps_scheme_host_port_and_path_only() {
        for (url, shown) in [
            (
                "https://user:pass@issuer.example:8443/tenant/jwks?api_key=k#frag",
                "https://issuer.example:8443/tenant/jwks",
            ),
            ("https://issuer.example/jwks", "https://issuer.example/jwks"),
            ("http://[::1]:80/jwks?x=1", "http://[::1]:80/jwks"),
            ("https://a@b@issuer.example?k=v", "https://issuer.example"),
            ("user:pass@issuer.example/jwks", "issuer.example/jwks"),
            ("/jwks?k=v", "/jwks"),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
        let long = format!("https://issuer.example/{}", "a".repeat(500));
        assert_eq!(redacted(&long).chars().count(), 200);
        // The form logged for a fetch (from the parsed URL) is redacted the same way.
        let uri: Uri = "https://issuer.example/jwks?api_key=k".parse().unwrap();
        assert_eq!(redacted(&uri.to_string()), "https://issuer.example/jwks");
    }

    #[test]
    fn discovery_url_joins_paths() {
        assert_eq!(
            discovery_url("https://accounts.google.com").unwrap(),
            "https://accounts.google.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://as.example/tenant1/").unwrap(),
            "https://as.example/tenant1/.well-known/openid-configuration"
        );
    }
}
