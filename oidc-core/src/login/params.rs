//! What login methods share: request parameters, state-store keys and values.

use aws_lc_rs::digest::{SHA256, digest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::form_urlencoded;
use zeroize::Zeroizing;

use crate::base64url;

/// Most parameters accepted in one query string or form.
const MAX_PARAMS: usize = 32;

/// Decoded `application/x-www-form-urlencoded` parameters (a query string or a form
/// body). Values may hold secrets (codes, passwords) and are zeroed on drop. A repeated
/// name makes the whole input invalid: there is no "first wins" to exploit.
pub(crate) struct Params(Vec<(String, Zeroizing<String>)>);

impl Params {
    /// Parses `input`; `None` if a name repeats or there are too many parameters.
    pub(crate) fn parse(input: &[u8]) -> Option<Params> {
        let mut params: Vec<(String, Zeroizing<String>)> = Vec::new();
        for (name, value) in form_urlencoded::parse(input) {
            if params.len() >= MAX_PARAMS || params.iter().any(|(n, _)| *n == name) {
                return None;
            }
            params.push((name.into_owned(), Zeroizing::new(value.into_owned())));
        }
        Some(Params(params))
    }

    /// The value of `name`, if present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// The state-store key for a single-use `token` of a login method: the token itself is
/// never stored, only its SHA-256, so a copy of the store cannot be replayed.
pub(crate) fn store_key(method: &str, kind: &str, token: &str) -> String {
    let hash = digest(&SHA256, token.as_bytes());
    format!("login/{method}/{kind}/{}", base64url::encode(hash.as_ref()))
}

/// Serializes a state-store value.
pub(crate) fn encode<T: Serialize>(value: &T) -> Option<Vec<u8>> {
    serde_json::to_vec(value).ok()
}

/// Deserializes a state-store value, zeroing the bytes afterwards.
pub(crate) fn decode<T: DeserializeOwned>(bytes: Vec<u8>) -> Option<T> {
    let bytes = Zeroizing::new(bytes);
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_are_refused() {
        assert!(Params::parse(b"code=a&state=b&code=c").is_none());
        let p = Params::parse(b"code=a%20b&state=&x").unwrap();
        assert_eq!(p.get("code"), Some("a b"));
        assert_eq!(p.get("state"), None, "empty is absent");
        assert_eq!(p.get("missing"), None);
        let many: Vec<String> = (0..40).map(|i| format!("p{i}=1")).collect();
        assert!(Params::parse(many.join("&").as_bytes()).is_none());
    }

    #[test]
    fn store_keys_hide_the_token() {
        let key = store_key("google", "state", "abc");
        assert!(key.starts_with("login/google/state/"));
        assert!(!key.ends_with("abc"));
        assert_ne!(key, store_key("oidc", "state", "abc"));
        assert_ne!(key, store_key("google", "csrf", "abc"));
    }
}
