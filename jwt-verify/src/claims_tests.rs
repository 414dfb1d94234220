//! Tests of the claims pass (`claims.rs`).

use serde::Deserialize;

use super::*;

const NOW: u64 = 1_700_000_000;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
}

fn policy() -> Policy {
    Policy::new("https://issuer.example", "api")
}

fn decode(json: &str) -> Result<(Claims, u64), Error> {
    decode_claims(json.as_bytes(), &policy(), NOW, false).map(|d| (d.claims, d.exp))
}

fn kind(json: &str) -> ErrorKind {
    decode(json).unwrap_err().kind()
}

#[test]
fn valid_claims() {
    let (claims, exp) = decode(
        r#"{"iss":"https://issuer.example","sub":"u1","aud":["x","api"],"exp":1700000100,"iat":1699999990,"scope":"a b"}"#,
    )
    .unwrap();
    assert_eq!(claims.sub, "u1");
    assert_eq!(claims.scope.as_deref(), Some("a b"));
    assert_eq!(exp, 1_700_000_100);
}

#[test]
fn works_with_untyped_claims() {
    let Decoded { claims: value, .. } = decode_claims::<serde_json::Value>(
        br#"{"iss":"https://issuer.example","aud":"api","exp":1700000100,"x":{"y":[1,2]}}"#,
        &policy(),
        NOW,
        false,
    )
    .unwrap();
    assert_eq!(value["x"]["y"][1], 2);
    assert_eq!(value["exp"], 1_700_000_100);
}

#[test]
fn registered_claims_fill_optional_and_list_fields() {
    #[derive(Deserialize)]
    struct Optional {
        sub: Option<String>,
        iat: Option<u64>,
        aud: Option<Vec<String>>,
        exp: f64,
    }
    let Decoded { claims, .. } = decode_claims::<Optional>(
        br#"{"iss":"https://issuer.example","sub":"u1","aud":["api","x"],"exp":1700000100,"iat":1699999990}"#,
        &policy(),
        NOW,
        false,
    )
    .unwrap();
    assert_eq!(claims.sub.as_deref(), Some("u1"));
    assert_eq!(claims.iat, Some(1_699_999_990));
    assert_eq!(claims.aud.unwrap(), ["api", "x"]);
    assert!((claims.exp - 1_700_000_100.0).abs() < 0.5);
}

#[test]
fn required_claims() {
    assert_eq!(
        kind(r#"{"sub":"u","aud":"api","exp":1700000100}"#),
        ErrorKind::MissingClaim
    );
    assert_eq!(
        kind(r#"{"iss":"https://issuer.example","sub":"u","exp":1700000100}"#),
        ErrorKind::MissingClaim
    );
    assert_eq!(
        kind(r#"{"iss":"https://issuer.example","sub":"u","aud":"api"}"#),
        ErrorKind::MissingClaim
    );
}

#[test]
fn wrong_types_are_invalid_claims() {
    let cases = [
        r#"{"iss":["https://issuer.example"],"sub":"u","aud":"api","exp":1700000100}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":"1700000100"}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":1700000100.5}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":1.7e9}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":-1}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":99999999999999999999}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":1700000100,"nbf":"0"}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":1700000100,"iat":null}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":[],"exp":1700000100}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":["api",1],"exp":1700000100}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":{"a":"api"},"exp":1700000100}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":1700000100,"jti":5}"#,
    ];
    for json in cases {
        assert_eq!(kind(json), ErrorKind::InvalidClaim, "{json}");
    }
    // A `sub` of the wrong type fails the caller's type and is reported as invalid too.
    assert_eq!(
        kind(r#"{"iss":"https://issuer.example","sub":7,"aud":"api","exp":1700000100}"#),
        ErrorKind::InvalidClaim
    );
}

#[test]
fn duplicate_claims_are_refused_even_if_unknown() {
    for json in [
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":1700000100,"exp":9999999999}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":1700000100,"x":1,"x":2}"#,
        r#"{"iss":"https://issuer.example","sub":"u","aud":"api","exp":1700000100,"s\u0075b":"admin"}"#,
    ] {
        assert_eq!(kind(json), ErrorKind::Malformed, "{json}");
    }
}

#[test]
fn time_checks_with_leeway() {
    let base = r#""iss":"https://issuer.example","sub":"u","aud":"api""#;
    // Leeway is 30 s: exp 29 s ago still passes, 30 s ago does not.
    assert!(decode(&format!("{{{base},\"exp\":{}}}", NOW - 29)).is_ok());
    assert_eq!(
        kind(&format!("{{{base},\"exp\":{}}}", NOW - 30)),
        ErrorKind::Expired
    );
    assert_eq!(kind(&format!("{{{base},\"exp\":0}}")), ErrorKind::Expired);
    let exp = NOW + 600;
    assert!(decode(&format!("{{{base},\"exp\":{exp},\"nbf\":{}}}", NOW + 30)).is_ok());
    assert_eq!(
        kind(&format!("{{{base},\"exp\":{exp},\"nbf\":{}}}", NOW + 31)),
        ErrorKind::NotYetValid
    );
    assert_eq!(
        kind(&format!("{{{base},\"exp\":{exp},\"iat\":{}}}", NOW + 31)),
        ErrorKind::IssuedInFuture
    );
}

#[test]
fn issuer_and_audience_are_exact() {
    let with = |iss: &str, aud: &str| {
        format!(
            r#"{{"iss":"{iss}","sub":"u","aud":"{aud}","exp":{}}}"#,
            NOW + 60
        )
    };
    assert_eq!(
        kind(&with("https://issuer.example/", "api")),
        ErrorKind::WrongIssuer
    );
    assert_eq!(
        kind(&with("https://ISSUER.example", "api")),
        ErrorKind::WrongIssuer
    );
    assert_eq!(
        kind(&with("https://issuer.example", "api2")),
        ErrorKind::WrongAudience
    );
    assert_eq!(
        kind(&with("https://issuer.example", "API")),
        ErrorKind::WrongAudience
    );
}

#[test]
fn audience_check_can_be_skipped_explicitly() {
    let p = policy().insecure_skip_audience_check();
    let json = format!(
        r#"{{"iss":"https://issuer.example","sub":"u","exp":{}}}"#,
        NOW + 60
    );
    assert!(decode_claims::<Claims>(json.as_bytes(), &p, NOW, false).is_ok());
}

#[test]
fn not_an_object() {
    assert_eq!(kind("[1,2]"), ErrorKind::Malformed);
    assert_eq!(kind("\"x\""), ErrorKind::Malformed);
    assert_eq!(kind(""), ErrorKind::Malformed);
}

#[test]
fn callers_type_mismatch_is_a_claims_error() {
    let json = format!(
        r#"{{"iss":"https://issuer.example","aud":"api","exp":{}}}"#,
        NOW + 60
    );
    assert_eq!(
        kind(&json),
        ErrorKind::Claims,
        "sub missing for the caller's type"
    );
}

#[test]
fn trailing_garbage_is_refused() {
    let json = format!(
        r#"{{"iss":"https://issuer.example","sub":"u","aud":"api","exp":{}}}x"#,
        NOW + 60
    );
    assert_eq!(kind(&json), ErrorKind::Malformed);
}

fn with_status(status: &str) -> String {
    format!(
        r#"{{"iss":"https://issuer.example","sub":"u","aud":"api","exp":{},"status":{status}}}"#,
        NOW + 60
    )
}

#[test]
fn status_is_captured_and_still_given_to_the_callers_type() {
    #[derive(Deserialize)]
    struct WithStatus {
        status: serde_json::Value,
    }
    let json = with_status(r#"{"status_list":{"idx":3,"uri":"https://issuer.example/s/1"}}"#);
    let decoded = decode_claims::<WithStatus>(json.as_bytes(), &policy(), NOW, true).unwrap();
    let status = decoded.status.unwrap();
    assert_eq!(
        (status.idx, &*status.uri),
        (3, "https://issuer.example/s/1")
    );
    assert_eq!(decoded.claims.status["status_list"]["idx"], 3);
    let untyped =
        decode_claims::<serde_json::Value>(json.as_bytes(), &policy(), NOW, true).unwrap();
    assert_eq!(
        untyped.claims["status"]["status_list"]["uri"],
        "https://issuer.example/s/1"
    );
    #[derive(Deserialize)]
    struct Typed {
        status: Option<TypedStatus>,
    }
    #[derive(Deserialize)]
    struct TypedStatus {
        status_list: TypedList,
    }
    #[derive(Deserialize)]
    struct TypedList {
        idx: u64,
        uri: String,
    }
    let typed = decode_claims::<Typed>(json.as_bytes(), &policy(), NOW, true).unwrap();
    let list = typed.claims.status.unwrap().status_list;
    assert_eq!(
        (list.idx, list.uri.as_str()),
        (3, "https://issuer.example/s/1")
    );
    // Not captured when status lists are off.
    let off = decode_claims::<Claims>(json.as_bytes(), &policy(), NOW, false).unwrap();
    assert!(off.status.is_none());
}

#[test]
fn malformed_status_is_an_invalid_claim_only_when_checked() {
    for status in [
        r#"[]"#,
        r#"{}"#,
        r#""https://issuer.example/s/1""#,
        r#"{"status_list":{"idx":-1,"uri":"https://issuer.example/s/1"}}"#,
        r#"{"status_list":{"idx":1,"uri":["https://issuer.example/s/1"]}}"#,
    ] {
        let json = with_status(status);
        assert_eq!(
            decode_claims::<Claims>(json.as_bytes(), &policy(), NOW, true)
                .err()
                .map(|e| e.kind()),
            Some(ErrorKind::InvalidClaim),
            "{status}"
        );
        assert!(decode_claims::<Claims>(json.as_bytes(), &policy(), NOW, false).is_ok());
    }
    let twice = format!(
        r#"{{"iss":"https://issuer.example","sub":"u","aud":"api","exp":{},"status":{{"status_list":{{"idx":1,"uri":"https://a/1"}}}},"status":{{}}}}"#,
        NOW + 60
    );
    assert_eq!(
        decode_claims::<Claims>(twice.as_bytes(), &policy(), NOW, true)
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::Malformed)
    );
}
