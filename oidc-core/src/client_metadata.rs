//! The client metadata rules that Dynamic Client Registration (`/register`) and Client ID
//! Metadata Documents share: what a `client_name` shown on the consent page may hold, which
//! grant and response types are served, and which redirect URIs are accepted.
//!
//! Each caller turns the errors into its own form (an RFC 7591 error response, a
//! [`MetadataDocumentError`](crate::client::MetadataDocumentError)) and keeps the rules
//! that must differ:
//!
//! - `token_endpoint_auth_method`: registration issues a secret to confidential clients; a
//!   document is public, so its client cannot hold a secret and must be `none`.
//! - An unfit `client_name`: registration refuses the request (the registrant sees the
//!   error, and there is no trustworthy name to show instead); a document's client is shown
//!   under the host of its `client_id` URL, which names who published it.
//! - How many redirect URIs: configured for registration, [`MAX_REDIRECT_URIS`] for
//!   documents.
//!
//! [`MAX_REDIRECT_URIS`]: crate::outbound::MAX_REDIRECT_URIS

use crate::error::InvalidValue;
use crate::redirect::RedirectUri;

/// Longest `client_name` shown on the consent page, in characters.
pub const MAX_CLIENT_NAME_CHARS: usize = 64;

/// A `client_name` that must not be shown: longer than [`MAX_CLIENT_NAME_CHARS`], or
/// holding a control or invisible formatting character (see [`is_hidden_char`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnfitName;

/// The `client_name` to show, trimmed; `None` when it is empty.
pub(crate) fn client_name(raw: &str) -> Result<Option<&str>, UnfitName> {
    let name = raw.trim();
    if name.chars().count() > MAX_CLIENT_NAME_CHARS || name.chars().any(is_hidden_char) {
        return Err(UnfitName);
    }
    Ok((!name.is_empty()).then_some(name))
}

/// Control characters, and the invisible formatting characters that could make a name on
/// the consent page read as something else (bidirectional overrides and isolates,
/// zero-width marks, the byte order mark).
pub(crate) fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// The grant types served, deduplicated, in the order given: `authorization_code` and
/// optionally `refresh_token`. Absent means `["authorization_code"]` (RFC 7591 §2).
pub(crate) fn grant_types(requested: Option<&[String]>) -> Result<Vec<&'static str>, &'static str> {
    let Some(requested) = requested else {
        return Ok(vec!["authorization_code"]);
    };
    let mut grants = Vec::with_capacity(2);
    for grant in requested {
        let known = match grant.as_str() {
            "authorization_code" => "authorization_code",
            "refresh_token" => "refresh_token",
            _ => return Err("grant_types may only hold authorization_code and refresh_token"),
        };
        if !grants.contains(&known) {
            grants.push(known);
        }
    }
    if !grants.contains(&"authorization_code") {
        return Err("grant_types must include authorization_code");
    }
    Ok(grants)
}

/// Checks `response_types`: absent (meaning `code`) or exactly `code`, possibly repeated.
pub(crate) fn response_types(requested: Option<&[String]>) -> Result<(), &'static str> {
    match requested {
        Some(types) if types.is_empty() || types.iter().any(|t| t != "code") => {
            Err("response_types may only hold code")
        }
        _ => Ok(()),
    }
}

/// Why a list of redirect URIs was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedirectUrisError {
    /// Absent or empty.
    Missing,
    /// More than the limit.
    TooMany,
    /// The URI at this index is not a valid redirect URI.
    Invalid(usize, InvalidValue),
    /// The URI at this index has a private-use scheme (`com.example.app:/cb`): any app on a
    /// device can claim one, and nothing ties it to the client.
    PrivateUseScheme(usize),
}

/// One to `max` redirect URIs, each `https` or `http` to a loopback host, without fragment
/// or wildcard; duplicates are dropped.
pub(crate) fn redirect_uris(
    uris: Option<&[String]>,
    max: usize,
) -> Result<Vec<RedirectUri>, RedirectUrisError> {
    let uris = uris.unwrap_or_default();
    if uris.is_empty() {
        return Err(RedirectUrisError::Missing);
    }
    if uris.len() > max {
        return Err(RedirectUrisError::TooMany);
    }
    let mut parsed: Vec<RedirectUri> = Vec::with_capacity(uris.len());
    for (index, uri) in uris.iter().enumerate() {
        let uri = RedirectUri::parse(uri).map_err(|e| RedirectUrisError::Invalid(index, e))?;
        if uri.is_private_use_scheme() {
            return Err(RedirectUrisError::PrivateUseScheme(index));
        }
        if !parsed.contains(&uri) {
            parsed.push(uri);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn names_are_trimmed_bounded_and_free_of_hidden_characters() {
        assert_eq!(client_name("  Example App "), Ok(Some("Example App")));
        assert_eq!(client_name("Café Ünïcode ✓"), Ok(Some("Café Ünïcode ✓")));
        assert_eq!(client_name("   "), Ok(None));
        let longest = "é".repeat(MAX_CLIENT_NAME_CHARS);
        assert_eq!(client_name(&longest), Ok(Some(longest.as_str())));
        assert_eq!(
            client_name(&"x".repeat(MAX_CLIENT_NAME_CHARS + 1)),
            Err(UnfitName)
        );
        for hidden in [
            "a\u{0}b",
            "line\nbreak",
            "Bank\u{202E}lapyap",
            "Zero\u{200B}width",
            "Iso\u{2066}late",
            "\u{FEFF}Bom",
        ] {
            assert_eq!(client_name(hidden), Err(UnfitName), "{hidden:?}");
        }
    }

    #[test]
    fn grant_types_are_code_and_optionally_refresh() {
        assert_eq!(grant_types(None), Ok(vec!["authorization_code"]));
        assert_eq!(
            grant_types(Some(&strings(&[
                "refresh_token",
                "authorization_code",
                "refresh_token"
            ]))),
            Ok(vec!["refresh_token", "authorization_code"])
        );
        for bad in [
            &[][..],
            &["refresh_token"][..],
            &["authorization_code", "implicit"][..],
            &["client_credentials"][..],
        ] {
            assert!(grant_types(Some(&strings(bad))).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn response_types_are_code_only() {
        assert_eq!(response_types(None), Ok(()));
        assert_eq!(response_types(Some(&strings(&["code"]))), Ok(()));
        assert!(response_types(Some(&[])).is_err());
        assert!(response_types(Some(&strings(&["code", "token"]))).is_err());
    }

    #[test]
    fn redirect_uris_are_bounded_checked_and_deduplicated() {
        let ok = redirect_uris(
            Some(&strings(&[
                "https://app.example/cb",
                "http://127.0.0.1/cb",
                "https://app.example/cb",
            ])),
            3,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(redirect_uris(None, 3), Err(RedirectUrisError::Missing));
        assert_eq!(redirect_uris(Some(&[]), 3), Err(RedirectUrisError::Missing));
        assert_eq!(
            redirect_uris(Some(&strings(&["https://app.example/cb"; 4])), 3),
            Err(RedirectUrisError::TooMany)
        );
        assert!(matches!(
            redirect_uris(
                Some(&strings(&[
                    "https://app.example/cb",
                    "http://app.example/cb"
                ])),
                3
            ),
            Err(RedirectUrisError::Invalid(1, _))
        ));
        assert_eq!(
            redirect_uris(Some(&strings(&["com.example.app:/cb"])), 3),
            Err(RedirectUrisError::PrivateUseScheme(0))
        );
    }
}
