//! ID token checks without sockets: tokens signed with a test key, verified against
//! static keys on a virtual clock, each forged the way an attacker would.

use jwks_verify::ManualClock;
use serde_json::{Value, json};

use super::*;
use crate::jwt::encode_jwt;
use crate::keys::test_keys;
use crate::login::upstream::config::{ClientSecret, GOOGLE_ISSUER};
use crate::types::Issuer;

const T0: u64 = 1_700_000_000;
const IDP: &str = "https://idp.example";
const NONCE: &str = "n-0S6_WzA2Mj";

fn ours() -> Issuer {
    Issuer::parse("https://auth.example.com").unwrap()
}

fn config() -> UpstreamConfig {
    UpstreamConfig::new(
        Issuer::parse(IDP).unwrap(),
        "client-1",
        ClientSecret::new("s"),
        &ours(),
    )
    .allowed_emails(["alice@example.com"])
}

fn metadata_of(issuer: &str) -> UpstreamMetadata {
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": "https://idp.example/authorize",
        "token_endpoint": "https://idp.example/token",
        "jwks_uri": "https://idp.example/jwks",
    });
    UpstreamMetadata::from_json(&Issuer::parse(issuer).unwrap(), doc.to_string().as_bytes())
        .unwrap()
}

/// The verifier the driver builds, with key 0 as the upstream's only key.
fn verifier(config: &UpstreamConfig) -> Verifier {
    let jwks = format!(
        r#"{{"keys":[{}]}}"#,
        test_keys::key(0).public_jwk().to_json()
    );
    verifier_builder(config, &metadata_of(config.issuer().as_str()))
        .unwrap()
        .static_jwks(jwks)
        .clock(ManualClock::at_unix(T0))
        .build()
        .unwrap()
}

fn claims() -> Value {
    json!({
        "iss": IDP,
        "sub": "alice-sub",
        "aud": "client-1",
        "iat": T0,
        "exp": T0 + 300,
        "nonce": NONCE,
        "email": "Alice@Example.com",
        "email_verified": true,
        "name": "  Alice  ",
    })
}

fn with(changes: &Value) -> Value {
    let mut claims = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn sign(claims: &Value) -> String {
    encode_jwt(&test_keys::key(0), "JWT", claims).unwrap()
}

async fn admit_with(config: &UpstreamConfig, claims: &Value) -> Result<AuthenticatedUser, Refusal> {
    admit_id_token(&verifier(config), config, &sign(claims), NONCE, T0).await
}

async fn admit(claims: &Value) -> Result<AuthenticatedUser, Refusal> {
    admit_with(&config(), claims).await
}

#[tokio::test]
async fn a_valid_id_token_admits_the_federated_subject() {
    let user = admit(&claims()).await.unwrap();
    assert_eq!(user.subject, federated_subject(IDP, "alice-sub"));
    assert_eq!(user.auth_time, T0);
    assert_eq!(user.email.as_deref(), Some("Alice@Example.com"));
    assert!(user.email_verified);
    assert_eq!(user.name.as_deref(), Some("Alice"));
    assert_eq!(
        user.method,
        LoginMethod::Upstream {
            issuer: IDP.to_owned()
        }
    );
}

#[tokio::test]
async fn attack_id_token_with_a_wrong_nonce_is_refused() {
    let replayed = admit(&with(&json!({"nonce": "another-login"}))).await;
    assert!(matches!(replayed, Err(Refusal::NonceMismatch)));
    let missing = admit(&with(&json!({"nonce": null}))).await;
    assert!(matches!(missing, Err(Refusal::NonceMismatch)));
}

#[tokio::test]
async fn attack_id_token_for_another_audience_is_refused() {
    let refused = admit(&with(&json!({"aud": "another-client"}))).await;
    assert!(matches!(refused, Err(Refusal::InvalidIdToken(_))));
}

#[tokio::test]
async fn attack_id_token_with_an_untrusted_extra_audience_is_refused() {
    let refused = admit(&with(&json!({"aud": ["client-1", "another-client"]}))).await;
    assert!(matches!(
        refused,
        Err(Refusal::InvalidIdToken("untrusted_audience"))
    ));
    assert!(admit(&with(&json!({"aud": ["client-1"]}))).await.is_ok());
}

#[tokio::test]
async fn attack_id_token_issued_to_another_party_is_refused() {
    let refused = admit(&with(&json!({"azp": "another-client"}))).await;
    assert!(matches!(refused, Err(Refusal::InvalidIdToken("azp"))));
}

#[tokio::test]
async fn attack_id_token_from_another_issuer_is_refused() {
    let refused = admit(&with(&json!({"iss": "https://evil.example"}))).await;
    assert!(matches!(refused, Err(Refusal::InvalidIdToken(_))));
    // The legacy Google spelling is accepted only from Google.
    let legacy = admit(&with(&json!({"iss": "accounts.google.com"}))).await;
    assert!(matches!(legacy, Err(Refusal::InvalidIdToken(_))));
}

#[tokio::test]
async fn google_legacy_issuer_names_the_same_subject() {
    let google = UpstreamConfig::google("client-1", ClientSecret::new("s"), &ours())
        .allowed_emails(["alice@example.com"]);
    for iss in [GOOGLE_ISSUER, GOOGLE_LEGACY_ISSUER] {
        let user = admit_with(&google, &with(&json!({"iss": iss})))
            .await
            .unwrap();
        assert_eq!(
            user.subject,
            federated_subject(GOOGLE_ISSUER, "alice-sub"),
            "{iss}"
        );
    }
}

#[tokio::test]
async fn attack_expired_id_token_is_refused() {
    let refused = admit(&with(&json!({"iat": T0 - 7200, "exp": T0 - 3600}))).await;
    assert!(matches!(refused, Err(Refusal::InvalidIdToken(_))));
}

#[tokio::test]
async fn attack_id_token_signed_with_another_key_is_refused() {
    let config = config();
    let forged = encode_jwt(&test_keys::key(1), "JWT", &claims()).unwrap();
    let refused = admit_id_token(&verifier(&config), &config, &forged, NONCE, T0).await;
    assert!(matches!(refused, Err(Refusal::InvalidIdToken(_))));
}

#[tokio::test]
async fn attack_id_token_with_an_empty_or_huge_subject_is_refused() {
    for sub in [String::new(), "s".repeat(256)] {
        let refused = admit(&with(&json!({"sub": sub}))).await;
        assert!(matches!(refused, Err(Refusal::InvalidIdToken("sub"))));
    }
}

#[tokio::test]
async fn attack_unverified_email_on_the_allow_list_is_refused() {
    for verified in [json!(false), json!("false"), Value::Null] {
        let refused = admit(&with(&json!({"email_verified": verified}))).await;
        assert!(matches!(refused, Err(Refusal::EmailNotVerified)));
    }
}

#[tokio::test]
async fn attack_email_not_on_the_allow_list_is_refused() {
    let refused = admit(&with(&json!({"email": "mallory@example.com"}))).await;
    assert!(matches!(refused, Err(Refusal::EmailNotAllowed)));
}

#[tokio::test]
async fn attack_hosted_domain_claimed_only_in_the_request_is_refused() {
    let config = UpstreamConfig::new(
        Issuer::parse(IDP).unwrap(),
        "client-1",
        ClientSecret::new("s"),
        &ours(),
    )
    .hosted_domains(["example.com"]);
    let refused = admit_with(&config, &claims()).await;
    assert!(matches!(refused, Err(Refusal::HostedDomainMismatch)));
    let other = admit_with(&config, &with(&json!({"hd": "evil.example"}))).await;
    assert!(matches!(other, Err(Refusal::HostedDomainMismatch)));
    assert!(
        admit_with(&config, &with(&json!({"hd": "Example.com"})))
            .await
            .is_ok()
    );
}

#[test]
fn email_verified_accepts_bool_and_string() {
    let parse = |v: &str| serde_json::from_str::<EmailVerified>(v).unwrap();
    assert_eq!(parse("true"), EmailVerified(true));
    assert_eq!(parse("false"), EmailVerified(false));
    assert_eq!(parse("\"true\""), EmailVerified(true));
    assert_eq!(parse("\"yes\""), EmailVerified(false));
}
