//! The Status List Token served at a status list `uri` (draft-ietf-oauth-status-list §5).

use serde::Deserialize;
use serde_json::value::RawValue;

use super::list::StatusList;
use crate::base64url;
use crate::jwk::KeySet;
use crate::jws;
use crate::policy::{Algorithm, AlgorithmSet};

/// The `typ` a Status List Token must carry, exactly.
pub(crate) const STATUS_LIST_TYP: &str = "statuslist+jwt";

/// The media type of a Status List Token response.
pub(crate) const STATUS_LIST_MEDIA_TYPE: &str = "application/statuslist+jwt";

/// A Status List Token that passed every check.
#[derive(Debug)]
pub(crate) struct ListToken {
    pub(crate) list: StatusList,
    pub(crate) iat: u64,
    pub(crate) exp: Option<u64>,
    pub(crate) ttl: Option<u64>,
}

/// What a Status List Token is checked against.
pub(crate) struct ListTokenRules<'a> {
    /// The URI it was fetched from; `sub` must equal it exactly.
    pub(crate) uri: &'a str,
    pub(crate) issuers: &'a [String],
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) leeway_secs: u64,
    pub(crate) now_unix: u64,
    pub(crate) max_list_bytes: usize,
}

/// Verifies a Status List Token (a compact JWS) with `keys` and decodes its list.
///
/// Checked: `alg` in the allow-list before any cryptography, no `crit`/`b64`, `typ`
/// exactly `statuslist+jwt`, the signature with a key of the set, then `iss` an accepted
/// issuer, `sub` equal to the URI, `iat` present and not in the future, `exp` (when
/// present) not passed, both with the leeway, and the list itself.
pub(crate) fn verify_list_token(
    body: &[u8],
    keys: &KeySet,
    rules: &ListTokenRules<'_>,
) -> Result<ListToken, &'static str> {
    let jwt =
        std::str::from_utf8(body.trim_ascii()).map_err(|_| "status list token is not text")?;
    let compact = jws::split(jwt).map_err(|_| "status list token is not a compact jws")?;
    let (alg, kid) = jws::with_header(compact.header, |header| {
        let alg = Algorithm::from_name(&header.alg)
            .filter(|alg| rules.algorithms.contains(*alg))
            .ok_or("status list token algorithm not allowed")?;
        if header.has_extension {
            return Err("status list token has a critical header");
        }
        if header.typ.as_deref() != Some(STATUS_LIST_TYP) {
            return Err("status list token typ is not statuslist+jwt");
        }
        Ok((alg, header.kid.map(std::borrow::Cow::into_owned)))
    })
    .map_err(|_| "status list token header is malformed")??;
    let valid = jws::verify_signature(compact.signature, |signature| {
        keys.verify_signature(alg, kid.as_deref(), compact.signing_input, signature)
    })
    .map_err(|_| "status list token signature is malformed")?;
    if !valid {
        return Err("status list token signature does not verify");
    }
    let payload = base64url::decode_to_vec(compact.payload)
        .ok_or("status list token payload is malformed")?;
    check_claims(&payload, rules)
}

#[derive(Deserialize)]
struct ListClaims<'a> {
    iss: String,
    sub: String,
    iat: Option<u64>,
    exp: Option<u64>,
    ttl: Option<u64>,
    #[serde(borrow)]
    status_list: &'a RawValue,
}

#[derive(Deserialize)]
struct ListMember {
    bits: u8,
    lst: String,
}

fn check_claims(payload: &[u8], rules: &ListTokenRules<'_>) -> Result<ListToken, &'static str> {
    let malformed = "status list token claims are malformed";
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return Err(malformed);
    }
    let claims: ListClaims<'_> = serde_json::from_slice(payload).map_err(|_| malformed)?;
    if !rules.issuers.contains(&claims.iss) {
        return Err("status list token iss is not an accepted issuer");
    }
    if claims.sub != rules.uri {
        return Err("status list token sub differs from its uri");
    }
    let now = rules.now_unix;
    let leeway = rules.leeway_secs;
    let iat = claims.iat.ok_or("status list token has no iat")?;
    if iat > now.saturating_add(leeway) {
        return Err("status list token issued in the future");
    }
    if claims
        .exp
        .is_some_and(|exp| now >= exp.saturating_add(leeway))
    {
        return Err("status list token expired");
    }
    let raw = claims.status_list.get();
    if !raw.starts_with('{') {
        return Err(malformed);
    }
    let member: ListMember = serde_json::from_str(raw).map_err(|_| malformed)?;
    let list = StatusList::from_lst(member.bits, &member.lst, rules.max_list_bytes).map_err(
        |e| match e {
            super::StatusListError::Bits => "status list bits is not 1, 2, 4 or 8",
            super::StatusListError::TooLarge => "status list over the decompressed size limit",
            _ => "status list lst is not base64url of a zlib stream",
        },
    )?;
    Ok(ListToken {
        list,
        iat,
        exp: claims.exp,
        ttl: claims.ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status_list::list::lst_of;
    use crate::test_keys;

    const NOW: u64 = 1_700_000_000;
    const URI: &str = "https://issuer.example/statuslists/1";
    const ISSUER: &str = "https://issuer.example";

    fn keys() -> KeySet {
        let jwks = test_keys::jwks(&[test_keys::rsa_jwk("k1")]);
        KeySet::from_jwks(jwks.as_bytes(), AlgorithmSet::only(Algorithm::RS256)).unwrap()
    }

    fn issuers() -> Vec<String> {
        vec![ISSUER.to_owned()]
    }

    fn check(token: &str) -> Result<ListToken, &'static str> {
        let issuers = issuers();
        verify_list_token(
            token.as_bytes(),
            &keys(),
            &ListTokenRules {
                uri: URI,
                issuers: &issuers,
                algorithms: AlgorithmSet::only(Algorithm::RS256),
                leeway_secs: 30,
                now_unix: NOW,
                max_list_bytes: 1024,
            },
        )
    }

    fn header() -> serde_json::Value {
        serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "statuslist+jwt"})
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "iss": ISSUER, "sub": URI, "iat": NOW - 10, "exp": NOW + 600, "ttl": 60,
            "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"},
        })
    }

    fn with(mut value: serde_json::Value, key: &str, new: serde_json::Value) -> serde_json::Value {
        if new.is_null() {
            value.as_object_mut().unwrap().remove(key);
        } else {
            value[key] = new;
        }
        value
    }

    #[test]
    fn a_good_list_token_is_accepted() {
        let token = check(&test_keys::sign(&header(), &claims())).unwrap();
        assert_eq!(token.list.status(0), Some(1));
        assert_eq!(token.iat, NOW - 10);
        assert_eq!(token.exp, Some(NOW + 600));
        assert_eq!(token.ttl, Some(60));
        // Surrounding whitespace in the body is fine.
        let padded = format!("\n{}\r\n", test_keys::sign(&header(), &claims()));
        assert!(check(&padded).is_ok());
    }

    #[test]
    fn attack_wrong_typ_list_token_is_refused() {
        for typ in [
            serde_json::json!("JWT"),
            serde_json::json!("at+jwt"),
            serde_json::json!("application/statuslist+jwt"),
            serde_json::json!("STATUSLIST+JWT"),
            serde_json::Value::Null,
        ] {
            let h = with(header(), "typ", typ.clone());
            assert_eq!(
                check(&test_keys::sign(&h, &claims())).unwrap_err(),
                "status list token typ is not statuslist+jwt",
                "{typ}"
            );
        }
    }

    #[test]
    fn attack_list_token_for_another_uri_is_refused() {
        for sub in [
            "https://issuer.example/statuslists/2",
            "https://issuer.example/statuslists/1/",
            "HTTPS://issuer.example/statuslists/1",
        ] {
            let c = with(claims(), "sub", serde_json::json!(sub));
            assert_eq!(
                check(&test_keys::sign(&header(), &c)).unwrap_err(),
                "status list token sub differs from its uri"
            );
        }
    }

    #[test]
    fn attack_list_token_from_a_foreign_issuer_is_refused() {
        let c = with(claims(), "iss", serde_json::json!("https://evil.example"));
        assert_eq!(
            check(&test_keys::sign(&header(), &c)).unwrap_err(),
            "status list token iss is not an accepted issuer"
        );
    }

    #[test]
    fn attack_unsigned_or_forged_list_token_is_refused() {
        let none = format!(
            "{}.{}.",
            base64url::encode(br#"{"alg":"none","typ":"statuslist+jwt"}"#),
            base64url::encode(claims().to_string().as_bytes())
        );
        assert!(check(&none).is_err());
        let hs = with(header(), "alg", serde_json::json!("HS256"));
        assert_eq!(
            check(&test_keys::sign(&hs, &claims())).unwrap_err(),
            "status list token algorithm not allowed"
        );
        // A valid token's signature over an all-zero list.
        let good = test_keys::sign(&header(), &claims());
        let zeros = with(
            claims(),
            "status_list",
            serde_json::json!({"bits": 1, "lst": lst_of(&[0, 0])}),
        );
        let forged = test_keys::sign(&header(), &zeros);
        let [h, _, s]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
        let p = forged.split('.').nth(1).unwrap();
        assert_eq!(
            check(&format!("{h}.{p}.{s}")).unwrap_err(),
            "status list token signature does not verify"
        );
        let unknown_kid = with(header(), "kid", serde_json::json!("k2"));
        assert!(check(&test_keys::sign(&unknown_kid, &claims())).is_err());
        let crit = with(header(), "crit", serde_json::json!(["exp"]));
        assert!(check(&test_keys::sign(&crit, &claims())).is_err());
    }

    #[test]
    fn time_claims() {
        let no_iat = with(claims(), "iat", serde_json::Value::Null);
        assert_eq!(
            check(&test_keys::sign(&header(), &no_iat)).unwrap_err(),
            "status list token has no iat"
        );
        let future = with(claims(), "iat", serde_json::json!(NOW + 31));
        assert!(check(&test_keys::sign(&header(), &future)).is_err());
        let expired = with(claims(), "exp", serde_json::json!(NOW - 30));
        assert_eq!(
            check(&test_keys::sign(&header(), &expired)).unwrap_err(),
            "status list token expired"
        );
        let no_exp = with(claims(), "exp", serde_json::Value::Null);
        assert!(check(&test_keys::sign(&header(), &no_exp)).is_ok());
        let float = with(claims(), "iat", serde_json::json!(1.5));
        assert!(check(&test_keys::sign(&header(), &float)).is_err());
    }

    #[test]
    fn malformed_status_list_members_are_refused() {
        for member in [
            serde_json::json!({"bits": 3, "lst": "eNrbuRgAAhcBXQ"}),
            serde_json::json!({"bits": 1}),
            serde_json::json!({"bits": "1", "lst": "eNrbuRgAAhcBXQ"}),
            serde_json::json!([1, "eNrbuRgAAhcBXQ"]),
            serde_json::json!({"bits": 1, "lst": "!!"}),
            serde_json::json!({"bits": 8, "lst": lst_of(&[0; 2000])}),
        ] {
            let c = with(claims(), "status_list", member.clone());
            assert!(check(&test_keys::sign(&header(), &c)).is_err(), "{member}");
        }
        let dup = r#"{"iss":"https://issuer.example","sub":"https://issuer.example/statuslists/1","iat":1,"status_list":{"bits":1,"lst":"eNrbuRgAAhcBXQ"},"iss":"https://issuer.example"}"#;
        assert!(check_claims(dup.as_bytes(), &rules_for_test()).is_err());
    }

    fn rules_for_test() -> ListTokenRules<'static> {
        static ISSUERS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        ListTokenRules {
            uri: URI,
            issuers: ISSUERS.get_or_init(issuers),
            algorithms: AlgorithmSet::only(Algorithm::RS256),
            leeway_secs: 30,
            now_unix: NOW,
            max_list_bytes: 1024,
        }
    }
}
