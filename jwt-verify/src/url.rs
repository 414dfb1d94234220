//! URL rules for key sources: absolute `https`, or `http` only to a loopback host.

use std::net::IpAddr;

use http::Uri;

use crate::error::BuildError;

/// Parses `url` and checks it is safe to fetch keys from.
pub(crate) fn key_source_url(url: &str) -> Result<Uri, BuildError> {
    let insecure = || BuildError::InsecureUrl(url.chars().take(200).collect());
    let uri: Uri = url.parse().map_err(|_| insecure())?;
    let host = uri.host().ok_or_else(insecure)?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback_host(host) => Ok(uri),
        _ => Err(insecure()),
    }
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
