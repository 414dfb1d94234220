//! Token status lists (draft-ietf-oauth-status-list): every access token names its grant's
//! entry, every revocation path sets that entry in the signed list a resource server
//! fetches, entries are allocated once and never cleared, and the Status List Token has
//! the form the draft requires.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use oidc_core::provider::StatusListPolicy;
use oidc_core::status_list::StatusList;
use provider_common::*;
use serde_json::{Value, json};

/// A fetched, signature-checked and decoded Status List Token.
struct FetchedList {
    header: Value,
    claims: Value,
    list: StatusList,
    response: TestResponse,
}

/// The `(uri, idx)` of an access token's `status` claim.
fn status_of(access_token: &str) -> (String, u64) {
    let claims = jwt_part(access_token, 1);
    let reference = &claims["status"]["status_list"];
    (
        reference["uri"].as_str().expect("a status uri").to_owned(),
        reference["idx"].as_u64().expect("a status idx"),
    )
}

/// Checks an RS256 JWS against the provider's JWK Set, by hand (aws-lc-rs).
fn verify_signature(token: &str, jwks: &str) {
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let kid = jwt_part(token, 0)["kid"].as_str().unwrap().to_owned();
    let jwks: Value = serde_json::from_str(jwks).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key is published");
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            signing_input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .expect("the status list token's signature verifies with the JWKS");
}

impl TestProvider {
    /// GETs the list at `uri` (under the issuer), checks the signature and decodes it.
    async fn fetch_list(&self, uri: &str) -> FetchedList {
        let path = uri
            .strip_prefix(ISSUER)
            .expect("the uri is under the issuer");
        let response = self.get(path).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("application/statuslist+jwt")
        );
        let token = response.text();
        verify_signature(&token, &self.jwks().await);
        let claims = jwt_part(&token, 1);
        assert_eq!(claims["sub"], uri, "sub is exactly the tokens' uri");
        assert_eq!(claims["status_list"]["bits"], 1);
        let list = StatusList::decode(
            claims["status_list"]["lst"].as_str().unwrap(),
            StatusListPolicy::DEFAULT_LIST_SIZE,
        )
        .unwrap();
        FetchedList {
            header: jwt_part(&token, 0),
            claims,
            list,
            response,
        }
    }

    /// The bit of `access_token` in its freshly fetched status list (`true`: revoked).
    async fn revoked_bit(&self, access_token: &str) -> bool {
        let (uri, idx) = status_of(access_token);
        self.fetch_list(&uri).await.list.get(idx)
    }

    async fn request(&self, method: Method, path: &str) -> TestResponse {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Full::default())
            .unwrap();
        self.send(request).await
    }
}

#[tokio::test]
async fn fresh_access_token_names_its_entry_under_the_issuer_and_it_is_valid() {
    let p = start().await;
    let tokens = p.tokens().await;
    let (uri, idx) = status_of(&tokens.access_token);
    assert_eq!(uri, format!("{ISSUER}/statuslists/1"));
    assert_eq!(idx, 0, "the first entry of the first list");
    assert!(!p.revoked_bit(&tokens.access_token).await);
    // The ID token carries no status claim.
    let id = jwt_part(tokens.id_token.as_ref().unwrap(), 1);
    assert!(id.get("status").is_none(), "{id}");
}

#[tokio::test]
async fn attack_code_replay_sets_the_grants_status_bit() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    let first = p.redeem(&code, &pkce.verifier).await;
    assert_eq!(first.status, StatusCode::OK);
    let tokens = tokens_of(&first);
    assert!(!p.revoked_bit(&tokens.access_token).await);

    let replay = p.redeem(&code, &pkce.verifier).await;
    assert_eq!(replay.error(), "invalid_grant");
    assert!(p.revoked_bit(&tokens.access_token).await);
}

#[tokio::test]
async fn attack_refresh_token_reuse_sets_the_familys_status_bit() {
    let p = start().await;
    let tokens = p.tokens().await;
    let first = tokens.refresh_token.clone().unwrap();
    let rotated = tokens_of(&p.refresh(&first, &[]).await);
    assert_eq!(
        status_of(&rotated.access_token),
        status_of(&tokens.access_token),
        "every access token of a grant shares its entry"
    );
    assert!(!p.revoked_bit(&rotated.access_token).await);

    assert_eq!(p.refresh(&first, &[]).await.error(), "invalid_grant");
    assert!(p.revoked_bit(&rotated.access_token).await);
    assert!(p.revoked_bit(&tokens.access_token).await);
}

#[tokio::test]
async fn revoking_a_refresh_token_sets_the_status_bit() {
    let p = start().await;
    let tokens = p.tokens().await;
    let other = p.tokens().await;
    let response = p
        .revoke(PUBLIC, tokens.refresh_token.as_ref().unwrap())
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(p.revoked_bit(&tokens.access_token).await);
    assert!(
        !p.revoked_bit(&other.access_token).await,
        "other grants stay valid"
    );
}

#[tokio::test]
async fn revoking_an_access_token_sets_the_status_bit_of_its_grant() {
    let p = start().await;
    let tokens = p.tokens().await;
    let refreshed = tokens_of(&p.refresh(tokens.refresh_token.as_ref().unwrap(), &[]).await);
    assert_eq!(
        p.revoke(PUBLIC, &tokens.access_token).await.status,
        StatusCode::OK
    );
    assert!(p.revoked_bit(&tokens.access_token).await);
    assert!(
        p.revoked_bit(&refreshed.access_token).await,
        "the whole grant is revoked"
    );
}

#[tokio::test]
async fn attack_revoking_another_clients_token_sets_no_bit() {
    let p = start().await;
    let tokens = p.tokens().await;
    // RFC 7009 §2.1: a token of another client is not revoked (and the answer is 200).
    let response = p
        .post_form(
            "/revoke",
            &[("token", &tokens.access_token)],
            &[("authorization", basic(CONF, CONFIDENTIAL_SECRET).as_str())],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(!p.revoked_bit(&tokens.access_token).await);
}

#[tokio::test]
async fn two_grants_get_different_entries() {
    let p = start().await;
    let a = p.tokens().await;
    let b = p.tokens().await;
    let (uri_a, idx_a) = status_of(&a.access_token);
    let (uri_b, idx_b) = status_of(&b.access_token);
    assert_eq!(uri_a, uri_b);
    assert_eq!((idx_a, idx_b), (0, 1), "allocated in sequence");
    p.revoke(PUBLIC, &a.access_token).await;
    assert!(p.revoked_bit(&a.access_token).await);
    assert!(!p.revoked_bit(&b.access_token).await);
}

#[tokio::test]
async fn entries_survive_a_restart_and_are_never_reused() {
    let p = start().await;
    let a = p.tokens().await;
    let b = p.tokens().await;
    p.revoke(PUBLIC, &a.access_token).await;
    let (dir, clock) = (Arc::clone(&p.dir), p.clock.clone());
    drop(p);

    let p = start_in(dir, clock, |_| {}).await;
    let c = p.tokens().await;
    assert_eq!(status_of(&c.access_token).1, 2, "never 0 or 1 again");
    assert!(p.revoked_bit(&a.access_token).await, "still revoked");
    assert!(!p.revoked_bit(&b.access_token).await);
    assert!(!p.revoked_bit(&c.access_token).await);
    // The grant from before the restart keeps its entry on refresh.
    let refreshed = tokens_of(&p.refresh(b.refresh_token.as_ref().unwrap(), &[]).await);
    assert_eq!(
        status_of(&refreshed.access_token),
        status_of(&b.access_token)
    );
}

#[tokio::test]
async fn purging_a_revoked_grant_does_not_clear_its_bit() {
    let p = start_with(|config| {
        config.lifetimes.refresh_idle = Duration::from_secs(3600);
        config.lifetimes.refresh_absolute = Duration::from_secs(2 * 3600);
    })
    .await;
    let tokens = p.tokens().await;
    p.revoke(PUBLIC, &tokens.access_token).await;
    p.clock.advance(3 * 3600);
    let report = p.provider.run_maintenance().await.unwrap();
    assert!(report.purged.grants >= 1, "{report:?}");
    assert!(p.revoked_bit(&tokens.access_token).await);
    // And the purge freed no entry for reuse.
    let next = p.tokens().await;
    assert_eq!(status_of(&next.access_token).1, 1);
}

#[tokio::test]
async fn status_list_token_has_the_drafts_header_claims_and_caching() {
    let p = start_with(|config| config.status_lists.ttl = Duration::from_secs(30)).await;
    let tokens = p.tokens().await;
    let (uri, _) = status_of(&tokens.access_token);
    let fetched = p.fetch_list(&uri).await;
    assert_eq!(fetched.header["typ"], "statuslist+jwt");
    assert_eq!(fetched.header["alg"], "RS256");
    assert!(fetched.header["kid"].is_string());
    let claims = &fetched.claims;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["iat"], T0);
    assert_eq!(claims["ttl"], 30);
    assert_eq!(
        claims["exp"],
        T0 + 3600 + 30,
        "valid as long as a token issued now, plus one ttl"
    );
    assert_eq!(fetched.list.size(), 1 << 20);
    assert_eq!(
        fetched.response.header("cache-control"),
        Some("public, max-age=30")
    );

    let head = p.request(Method::HEAD, "/statuslists/1").await;
    assert_eq!(head.status, StatusCode::OK);
    let post = p.request(Method::POST, "/statuslists/1").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), Some("GET"));
}

#[tokio::test]
async fn a_revocation_shows_in_the_next_fetch_and_unchanged_lists_are_not_signed_again() {
    let p = start_with(|config| config.status_lists.ttl = Duration::from_secs(30)).await;
    let tokens = p.tokens().await;
    let (uri, idx) = status_of(&tokens.access_token);
    let first = p.fetch_list(&uri).await.response.body;
    p.clock.advance(5);
    let cached = p.fetch_list(&uri).await.response.body;
    assert_eq!(first, cached, "served from the cache within the ttl");

    p.revoke(PUBLIC, &tokens.access_token).await;
    let after = p.fetch_list(&uri).await;
    assert!(after.list.get(idx), "visible at once, not after the ttl");
    assert_eq!(after.claims["iat"], T0 + 5);

    p.clock.advance(30);
    let renewed = p.fetch_list(&uri).await;
    assert_eq!(renewed.claims["iat"], T0 + 35, "signed again after the ttl");
    assert!(renewed.list.get(idx));
}

#[tokio::test]
async fn unknown_status_lists_are_404() {
    let p = start().await;
    assert_eq!(
        p.get("/statuslists/1").await.status,
        StatusCode::NOT_FOUND,
        "no list before the first grant"
    );
    p.tokens().await;
    assert_eq!(p.get("/statuslists/1").await.status, StatusCode::OK);
    for path in [
        "/statuslists/2",
        "/statuslists/0",
        "/statuslists/01",
        "/statuslists/x",
        "/statuslists/1/",
        "/statuslists/18446744073709551616",
    ] {
        assert_eq!(p.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_full_list_is_followed_by_a_new_one_listed_in_the_aggregation() {
    let p = start_with(|config| config.status_lists.list_size = 8).await;
    let mut tokens = Vec::new();
    for _ in 0..9 {
        tokens.push(p.tokens().await);
    }
    assert_eq!(
        status_of(&tokens[7].access_token),
        (format!("{ISSUER}/statuslists/1"), 7)
    );
    let last = &tokens[8].access_token;
    assert_eq!(status_of(last), (format!("{ISSUER}/statuslists/2"), 0));
    p.revoke(PUBLIC, last).await;
    assert!(p.revoked_bit(last).await);
    let first_list = p.fetch_list(&format!("{ISSUER}/statuslists/1")).await;
    assert_eq!(first_list.list.as_bytes(), [0], "list 1 is untouched");

    let discovery = p.get("/.well-known/openid-configuration").await.json();
    let aggregation = discovery["status_list_aggregation_endpoint"]
        .as_str()
        .unwrap();
    assert_eq!(aggregation, format!("{ISSUER}/statuslists"));
    let lists = p.get("/statuslists").await;
    assert_eq!(lists.status, StatusCode::OK);
    assert_eq!(
        lists.json(),
        json!({"status_lists": [format!("{ISSUER}/statuslists/1"), format!("{ISSUER}/statuslists/2")]})
    );
}

#[tokio::test]
async fn access_token_lifetime_is_configurable() {
    let p = start_with(|config| config.lifetimes.access = Duration::from_secs(900)).await;
    let tokens = p.tokens().await;
    let claims = jwt_part(&tokens.access_token, 1);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );
    assert_eq!(tokens.json["expires_in"], 900);
    p.clock.advance(60);
    let refreshed = tokens_of(&p.refresh(tokens.refresh_token.as_ref().unwrap(), &[]).await);
    let claims = jwt_part(&refreshed.access_token, 1);
    assert_eq!(claims["exp"], T0 + 60 + 900);
    // The status list lives as long as such a token, plus one ttl.
    let list = p.fetch_list(&status_of(&refreshed.access_token).0).await;
    assert_eq!(list.claims["exp"], T0 + 60 + 900 + 10);
}

#[tokio::test]
async fn status_lists_can_be_turned_off_and_on_again() {
    let p = start_with(|config| config.status_lists = StatusListPolicy::disabled()).await;
    let tokens = p.tokens().await;
    let claims = jwt_part(&tokens.access_token, 1);
    assert!(claims.get("status").is_none(), "{claims}");
    assert_eq!(p.get("/statuslists").await.status, StatusCode::NOT_FOUND);
    assert_eq!(p.get("/statuslists/1").await.status, StatusCode::NOT_FOUND);
    let discovery = p.get("/.well-known/openid-configuration").await.json();
    assert!(discovery.get("status_list_aggregation_endpoint").is_none());
    let (dir, clock) = (Arc::clone(&p.dir), p.clock.clone());
    drop(p);

    // Turned on again: the grant from before gets an entry at its next refresh, and
    // revoking it then sets that entry.
    let p = start_in(dir, clock, |_| {}).await;
    let refreshed = tokens_of(&p.refresh(tokens.refresh_token.as_ref().unwrap(), &[]).await);
    let entry = status_of(&refreshed.access_token);
    let again = tokens_of(
        &p.refresh(refreshed.refresh_token.as_ref().unwrap(), &[])
            .await,
    );
    assert_eq!(status_of(&again.access_token), entry, "kept by the grant");
    assert!(!p.revoked_bit(&again.access_token).await);
    p.revoke(PUBLIC, again.refresh_token.as_ref().unwrap())
        .await;
    assert!(p.revoked_bit(&again.access_token).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_allocations_are_distinct_and_sequential() {
    use oidc_core::store::{ProviderStore, SqliteStore};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("provider.db")).unwrap());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.allocate_status_index(8, T0).await.unwrap() })
        })
        .collect();
    let mut entries = Vec::new();
    for task in tasks {
        let entry = task.await.unwrap();
        entries.push((entry.list, entry.index));
    }
    entries.sort_unstable();
    let expected: Vec<(u64, u64)> = (0..20).map(|n| (n / 8 + 1, n % 8)).collect();
    assert_eq!(entries, expected, "no entry twice, none skipped");
    assert_eq!(store.status_lists().await.unwrap(), [1, 2, 3]);
    let third = store.status_list(3).await.unwrap().unwrap();
    assert_eq!((third.size, third.revision), (8, 0));
    assert!(third.revoked.is_empty());
    assert_eq!(store.status_list_revision(4).await.unwrap(), None);
}
