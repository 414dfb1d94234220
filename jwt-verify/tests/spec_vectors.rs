//! Specification vectors: RFC 7515 A.2, RFC 7520 §4.1 and Wycheproof RSA PKCS#1 v1.5.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use jwks_verify::{Algorithm, AlgorithmSet, ErrorKind, KeySet, ManualClock, Policy, Verifier};
use serde_json::json;
use wycheproof::TestResult;
use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};

mod common;

/// RFC 7515 Appendix A.2: the RSA public key (n, e) and the RS256 JWS.
const A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const A2_JWS: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const A2_EXP: u64 = 1_300_819_380;

/// RFC 7520 §3.3 public key members (the private members are deliberately left out) and the
/// §4.1 compact RS256 JWS over the "It's a dangerous business, Frodo" payload.
const R7520_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";
const R7520_JWS: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9.SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg";
const R7520_PAYLOAD: &str = "It\u{2019}s a dangerous business, Frodo, going out your door. You step onto the road, and if you don't keep your feet, there\u{2019}s no knowing where you might be swept off to.";

fn a2_verifier(clock: ManualClock) -> Verifier {
    let jwks = json!({"keys": [{"kty": "RSA", "n": A2_N, "e": "AQAB"}]});
    // The A.2 claims have no audience: this vector is about the signature.
    Verifier::builder(Policy::new("joe", "unused").insecure_skip_audience_check())
        .static_jwks(jwks.to_string())
        .clock(clock)
        .build()
        .unwrap()
}

#[derive(Debug, serde::Deserialize)]
struct A2Claims {
    iss: String,
    #[serde(rename = "http://example.com/is_root")]
    is_root: bool,
}

#[tokio::test]
async fn rfc7515_a2_rs256_verifies_on_its_own_clock() {
    let verifier = a2_verifier(ManualClock::at_unix(A2_EXP - 60));
    let verified = verifier.verify::<A2Claims>(A2_JWS).await.unwrap();
    assert_eq!(verified.iss, "joe");
    assert!(verified.is_root);
    assert_eq!(verified.expires_at(), A2_EXP);
}

#[tokio::test]
async fn rfc7515_a2_is_expired_today() {
    let verifier = a2_verifier(ManualClock::at_unix(common::unix_now()));
    let err = verifier.verify::<A2Claims>(A2_JWS).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
}

#[tokio::test]
async fn rfc7515_a2_tampered_payload_fails() {
    let verifier = a2_verifier(ManualClock::at_unix(A2_EXP - 60));
    let mut parts: Vec<&str> = A2_JWS.split('.').collect();
    let forged =
        common::b64(br#"{"iss":"joe","exp":1300819380,"http://example.com/is_root":false}"#);
    parts[1] = &forged;
    let err = verifier
        .verify::<A2Claims>(&parts.join("."))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSignature);
}

#[tokio::test]
async fn rfc7520_4_1_rs256_signature_verifies() {
    let jwks = json!({"keys": [{
        "kty": "RSA",
        "kid": "bilbo.baggins@hobbiton.example",
        "use": "sig",
        "n": R7520_N,
        "e": "AQAB",
    }]});
    let verifier = Verifier::builder(Policy::new("unused", "unused"))
        .static_jwks(jwks.to_string())
        .build()
        .unwrap();
    let payload = verifier.verify_jws_payload(R7520_JWS).await.unwrap();
    assert_eq!(String::from_utf8(payload).unwrap(), R7520_PAYLOAD);

    // The same JWS with one signature byte changed fails.
    let mut bad = R7520_JWS.to_owned();
    let last = bad.pop().unwrap();
    bad.push(if last == 'g' { 'h' } else { 'g' });
    let err = verifier.verify_jws_payload(&bad).await.unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::InvalidSignature | ErrorKind::Malformed
    ));
}

#[test]
fn rfc7520_key_with_private_members_is_refused() {
    // The cookbook's key includes `d`, `p`, `q`…: a public key set must never carry them.
    let jwks =
        json!({"keys": [{"kty": "RSA", "kid": "bilbo", "n": R7520_N, "e": "AQAB", "d": "AQAB"}]});
    assert!(
        KeySet::from_jwks(
            jwks.to_string().as_bytes(),
            AlgorithmSet::only(Algorithm::RS256)
        )
        .is_err()
    );
}

/// Every Wycheproof RSA-2048/SHA-256 PKCS#1 v1.5 vector gives the expected verdict through
/// the same JWK import path tokens use (leading zero bytes in `n` included).
#[test]
fn wycheproof_rsa_2048_sha256_pkcs1_v15() {
    let set = TestSet::load(TestName::Rsa2048Sha256).unwrap();
    let (mut valid, mut invalid, mut acceptable) = (0, 0, 0);
    for group in &set.test_groups {
        let n: &[u8] = &group.key.n;
        let e: &[u8] = &group.key.e;
        let jwks =
            json!({"keys": [{"kty": "RSA", "kid": "w", "n": common::b64(n), "e": common::b64(e)}]});
        let Ok(keys) = KeySet::from_jwks(
            jwks.to_string().as_bytes(),
            AlgorithmSet::only(Algorithm::RS256),
        ) else {
            // Only keys we refuse on purpose (below 2048 bits) may fail to load.
            assert!(
                group.key_size < 2048,
                "key of {} bits refused",
                group.key_size
            );
            continue;
        };
        for test in &group.tests {
            let ok = keys.verify_signature(Algorithm::RS256, Some("w"), &test.msg, &test.sig);
            match test.result {
                TestResult::Valid => {
                    assert!(ok, "valid vector {} refused", test.tc_id);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(
                        !ok,
                        "invalid vector {} ({:?}) accepted",
                        test.tc_id, test.flags
                    );
                    invalid += 1;
                }
                TestResult::Acceptable => acceptable += 1,
            }
        }
    }
    assert!(
        valid >= 9 && invalid >= 200,
        "ran {valid} valid, {invalid} invalid, {acceptable} acceptable"
    );
}
