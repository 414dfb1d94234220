//! The behaviour every `ProviderStore` must have, as generic async functions over
//! `Arc<dyn ProviderStore>`, and [`store_suite!`] to instantiate them as tests for one
//! backend: single-use state, compare-and-swap steps, grant listing and revocation.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use oidc_core::authn::{AuthenticatedUser, LoginMethod, TransactionId};
use oidc_core::client::ClientKind;
use oidc_core::keys::{KeyRing, RotationPolicy};
use oidc_core::pkce::CodeChallenge;
use oidc_core::redirect::RedirectUri;
use oidc_core::secret::SecretHash;
use oidc_core::store::{
    AuthorizationCodeRecord, GrantId, GrantRecord, NewRefreshToken, NewTokens,
    PendingAuthorization, PendingKey, PendingStatus, ProviderStore, RedeemOutcome, ReleasedClaims,
    StoreErrorKind,
};
use oidc_core::types::{ClientId, ResourceIndicator, Scope, Subject};

use crate::provider_common::*;

/// Instantiates every function of the suite as a test. `$open` is an async function
/// returning `(guard, Arc<dyn ProviderStore>)`: a fresh, empty store, and what keeps its
/// database alive until the test ends.
#[macro_export]
macro_rules! store_suite {
    ($open:path) => {
        $crate::store_suite!(@tests $open;
            login_state_is_taken_once_and_expires,
            login_state_take_has_one_winner_under_concurrency,
            pending_authorization_moves_forward_once,
            a_code_is_redeemed_once_and_a_replay_revokes_its_grant,
            signing_keys_are_saved_with_compare_and_swap,
            dynamic_client_ids_are_unique,
            subject_grants_lists_only_the_live_grants_of_that_subject_oldest_first,
            revoking_a_subjects_grants_of_one_client_leaves_the_others_and_sets_their_status_entries,
        );
    };
    (@tests $open:path; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (guard, store) = $open().await;
                $crate::store_suite::$name(store).await;
                drop(guard);
            }
        )*
    };
}

fn pending(now: u64) -> PendingAuthorization {
    PendingAuthorization::new(
        ClientId::parse(PUBLIC).unwrap(),
        "Public App".to_owned(),
        ClientKind::Static,
        RedirectUri::parse(PUBLIC_REDIRECT).unwrap(),
        CodeChallenge::from_s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap(),
        Scope::parse("openid email").unwrap(),
        vec![ResourceIndicator::parse(RESOURCE).unwrap()],
        now,
        now + 600,
    )
}

fn user() -> AuthenticatedUser {
    AuthenticatedUser::new(Subject::parse(SUBJECT).unwrap(), T0, LoginMethod::Password)
}

pub async fn login_state_is_taken_once_and_expires(store: Arc<dyn ProviderStore>) {
    store
        .put("state-1", b"value".to_vec(), T0 + 60)
        .await
        .unwrap();
    assert_eq!(
        store.take("state-1", T0).await.unwrap(),
        Some(b"value".to_vec())
    );
    assert_eq!(store.take("state-1", T0).await.unwrap(), None, "single use");

    store.put("state-2", b"v".to_vec(), T0 + 60).await.unwrap();
    assert_eq!(
        store.take("state-2", T0 + 60).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.take("never-put", T0).await.unwrap(), None);
}

pub async fn login_state_take_has_one_winner_under_concurrency(store: Arc<dyn ProviderStore>) {
    for round in 0..5 {
        let key = format!("race-{round}");
        store.put(&key, b"x".to_vec(), T0 + 60).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                let key = key.clone();
                tokio::spawn(async move { store.take(&key, T0).await.unwrap().is_some() })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.unwrap());
        }
        assert_eq!(winners, 1);
    }
}

pub async fn pending_authorization_moves_forward_once(store: Arc<dyn ProviderStore>) {
    let tx = TransactionId::generate(&SystemRandom::new()).unwrap();
    let key = PendingKey::for_transaction(&tx);
    store.insert_pending(key, pending(T0)).await.unwrap();
    assert_eq!(
        store.pending(key, T0).await.unwrap().unwrap().status,
        PendingStatus::AwaitingLogin
    );
    let csrf = SecretHash::of("csrf");
    let moved = store
        .complete_login(key, user(), csrf, T0)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        moved.status,
        PendingStatus::AwaitingConsent { .. }
    ));
    assert!(
        store
            .complete_login(key, user(), csrf, T0)
            .await
            .unwrap()
            .is_none(),
        "a login completes once"
    );
    assert!(
        store
            .complete_consent(key, None, T0)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .complete_consent(key, None, T0)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.pending(key, T0).await.unwrap().unwrap().status,
        PendingStatus::Done
    );
    assert!(
        store.pending(key, T0 + 600).await.unwrap().is_none(),
        "expired"
    );
}

pub async fn a_code_is_redeemed_once_and_a_replay_revokes_its_grant(store: Arc<dyn ProviderStore>) {
    let tx = TransactionId::generate(&SystemRandom::new()).unwrap();
    let key = PendingKey::for_transaction(&tx);
    store.insert_pending(key, pending(T0)).await.unwrap();
    store
        .complete_login(key, user(), SecretHash::of("c"), T0)
        .await
        .unwrap();
    let code = SecretHash::of("the-code");
    let record = oidc_core::store::AuthorizationCodeRecord::new(
        ClientId::parse(PUBLIC).unwrap(),
        RedirectUri::parse(PUBLIC_REDIRECT).unwrap(),
        None,
        Scope::parse("openid").unwrap(),
        vec![ResourceIndicator::parse(RESOURCE).unwrap()],
        Subject::parse(SUBJECT).unwrap(),
        T0,
        T0,
        T0 + 60,
    );
    store
        .complete_consent(key, Some((code, record)), T0)
        .await
        .unwrap();
    let grant = |id: &GrantId| {
        GrantRecord::new(
            id.clone(),
            ClientId::parse(PUBLIC).unwrap(),
            Subject::parse(SUBJECT).unwrap(),
            Scope::parse("openid").unwrap(),
            vec![ResourceIndicator::parse(RESOURCE).unwrap()],
            T0,
            ReleasedClaims::default(),
            T0,
            None,
        )
    };
    let rng = SystemRandom::new();
    let first = GrantId::generate(&rng).unwrap();
    let outcome = store
        .redeem_code(
            code,
            grant(&first),
            NewTokens::new("jti-1".into(), T0 + 3600, None),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(outcome, RedeemOutcome::Redeemed);
    assert!(
        !store
            .access_token("jti-1", T0)
            .await
            .unwrap()
            .unwrap()
            .grant
            .revoked
    );

    let second = GrantId::generate(&rng).unwrap();
    let outcome = store
        .redeem_code(
            code,
            grant(&second),
            NewTokens::new("jti-2".into(), T0 + 3600, None),
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RedeemOutcome::AlreadyRedeemed {
            grant_id: Some(first.clone())
        }
    );
    assert!(
        store
            .access_token("jti-1", T0)
            .await
            .unwrap()
            .unwrap()
            .grant
            .revoked,
        "the replay revoked the first grant in the same transaction"
    );
    assert!(store.access_token("jti-2", T0).await.unwrap().is_none());
    assert_eq!(
        store
            .redeem_code(
                SecretHash::of("other"),
                grant(&second),
                NewTokens::new("jti-3".into(), T0 + 3600, None),
                T0
            )
            .await
            .unwrap(),
        RedeemOutcome::NotFound
    );
}

pub async fn signing_keys_are_saved_with_compare_and_swap(store: Arc<dyn ProviderStore>) {
    let stored = store.load_keys().await.unwrap();
    assert_eq!(stored.version, 0);
    assert!(stored.records.is_empty());
    let mut ring = KeyRing::new(RotationPolicy::default()).unwrap();
    ring.advance(T0, &PooledKeys::new()).unwrap();
    assert_eq!(store.save_keys(ring.records(), 0).await.unwrap(), Some(1));
    assert_eq!(
        store.save_keys(ring.records(), 0).await.unwrap(),
        None,
        "a second writer with the old version loses"
    );
    let loaded = store.load_keys().await.unwrap();
    assert_eq!(loaded.version, 1);
    let reloaded = KeyRing::from_records(RotationPolicy::default(), loaded.records).unwrap();
    assert_eq!(reloaded.jwks(), ring.jwks());
}

pub async fn dynamic_client_ids_are_unique(store: Arc<dyn ProviderStore>) {
    let client = oidc_core::provider::StaticClient::public(
        ClientId::parse("dup").unwrap(),
        "Dup",
        vec![RedirectUri::parse(PUBLIC_REDIRECT).unwrap()],
    )
    .client()
    .clone();
    store.insert_client(client.clone()).await.unwrap();
    let error = store.insert_client(client).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Conflict);
    let loaded = store
        .client(&ClientId::parse("dup").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.kind, ClientKind::Dynamic);
    assert!(
        store
            .client(&ClientId::parse("none").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn subject_grants_lists_only_the_live_grants_of_that_subject_oldest_first(
    store: Arc<dyn ProviderStore>,
) {
    let by_access = issue_grant(&*store, "user-1", PUBLIC, 0, Lasting::Access(3600)).await;
    let by_refresh = issue_grant(&*store, "user-1", CONF, 1, Lasting::Refresh(7200)).await;
    // Nothing left to use at T0 + 100: an expired access token, no refresh token.
    issue_grant(&*store, "user-1", PUBLIC, 2, Lasting::Access(50)).await;
    // A refresh token idle past its expiry.
    issue_grant(&*store, "user-1", CONF, 3, Lasting::Refresh(60)).await;
    let revoked = issue_grant(&*store, "user-1", PUBLIC, 4, Lasting::Access(3600)).await;
    store.revoke_grant(revoked, T0 + 5).await.unwrap();
    let other_user = issue_grant(&*store, "user-2", PUBLIC, 5, Lasting::Access(3600)).await;

    let listed: Vec<GrantId> = store
        .subject_grants(subject("user-1"), T0 + 100)
        .await
        .unwrap()
        .into_iter()
        .map(|grant| {
            assert_eq!(grant.subject.as_str(), "user-1");
            assert!(!grant.revoked);
            grant.id
        })
        .collect();
    assert_eq!(listed, vec![by_access.clone(), by_refresh.clone()]);
    let of_user_2 = store
        .subject_grants(subject("user-2"), T0 + 100)
        .await
        .unwrap();
    assert_eq!(of_user_2.len(), 1);
    assert_eq!(of_user_2[0].id, other_user);
    assert!(
        store
            .subject_grants(subject("nobody"), T0 + 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Later, the access token expired and only the refresh token keeps a grant live.
    let later: Vec<GrantId> = store
        .subject_grants(subject("user-1"), T0 + 4000)
        .await
        .unwrap()
        .into_iter()
        .map(|grant| grant.id)
        .collect();
    assert_eq!(later, vec![by_refresh]);
}

pub async fn revoking_a_subjects_grants_of_one_client_leaves_the_others_and_sets_their_status_entries(
    store: Arc<dyn ProviderStore>,
) {
    let first = issue_grant(&*store, "user-1", PUBLIC, 0, Lasting::Access(3600)).await;
    let second = issue_grant(&*store, "user-1", PUBLIC, 1, Lasting::Refresh(7200)).await;
    let other_client = issue_grant(&*store, "user-1", CONF, 2, Lasting::Access(3600)).await;
    let other_user = issue_grant(&*store, "user-2", PUBLIC, 3, Lasting::Access(3600)).await;
    let before = store.status_list(1).await.unwrap().unwrap();
    assert!(before.revoked.is_empty());

    let revoked = store
        .revoke_subject_client_grants(subject("user-1"), client(PUBLIC), T0 + 10)
        .await
        .unwrap();
    assert_eq!(revoked, 2);

    let status_of = |id: &GrantId| {
        let id = id.clone();
        let store = store.clone();
        async move {
            let jti = id.to_string();
            let record = store.access_token(&jti, T0 + 5).await.unwrap().unwrap();
            (record.grant.revoked, record.grant.status.unwrap().index)
        }
    };
    let (first_revoked, first_idx) = status_of(&first).await;
    let (second_revoked, second_idx) = status_of(&second).await;
    let (client_revoked, client_idx) = status_of(&other_client).await;
    let (user_revoked, user_idx) = status_of(&other_user).await;
    assert!(first_revoked && second_revoked);
    assert!(!client_revoked, "another client's grant of the user stays");
    assert!(!user_revoked, "another user's grant of the client stays");
    let after = store.status_list(1).await.unwrap().unwrap();
    let mut set = after.revoked.clone();
    set.sort_unstable();
    let mut expected = vec![first_idx, second_idx];
    expected.sort_unstable();
    assert_eq!(set, expected, "exactly the revoked grants' entries are set");
    assert!(!set.contains(&client_idx) && !set.contains(&user_idx));
    assert!(after.revision > before.revision);
    assert!(
        store
            .subject_grants(subject("user-1"), T0 + 10)
            .await
            .unwrap()
            .iter()
            .all(|grant| grant.client_id.as_str() == CONF)
    );

    // Nothing is live any more for that pair, and unknown clients have nothing.
    for (who, what) in [
        ("user-1", PUBLIC),
        ("user-1", "unknown-client"),
        ("nobody", CONF),
    ] {
        assert_eq!(
            store
                .revoke_subject_client_grants(subject(who), client(what), T0 + 11)
                .await
                .unwrap(),
            0,
            "{who} / {what}"
        );
    }
    assert_eq!(
        store.status_list(1).await.unwrap().unwrap().revision,
        after.revision,
        "revoking nothing changes no list"
    );
}

/// How long a test grant's tokens last.
enum Lasting {
    /// An access token until `T0 + n`, no refresh token.
    Access(u64),
    /// An access token until `T0 + 10` and a refresh token idle until `T0 + n` (absolute
    /// expiry far later).
    Refresh(u64),
}

/// A grant of `client` for `subject` created at `T0 + at` through the whole code path
/// (pending, login, consent, redemption), with a status list entry.
async fn issue_grant(
    store: &dyn ProviderStore,
    subject: &str,
    client: &str,
    at: u64,
    lasting: Lasting,
) -> GrantId {
    let rng = SystemRandom::new();
    let now = T0 + at;
    let tx = TransactionId::generate(&rng).unwrap();
    let key = PendingKey::for_transaction(&tx);
    store.insert_pending(key, pending(now)).await.unwrap();
    store
        .complete_login(key, user(), SecretHash::of("c"), now)
        .await
        .unwrap()
        .unwrap();
    let code = SecretHash::of(tx.as_str());
    let record = AuthorizationCodeRecord::new(
        ClientId::parse(client).unwrap(),
        RedirectUri::parse(PUBLIC_REDIRECT).unwrap(),
        None,
        Scope::parse("openid").unwrap(),
        vec![ResourceIndicator::parse(RESOURCE).unwrap()],
        Subject::parse(subject).unwrap(),
        now,
        now,
        now + 60,
    );
    store
        .complete_consent(key, Some((code, record)), now)
        .await
        .unwrap()
        .unwrap();
    let id = GrantId::generate(&rng).unwrap();
    let status = store.allocate_status_index(1024, now).await.unwrap();
    let (tokens, refresh_expires_at) = match lasting {
        Lasting::Access(until) => (NewTokens::new(id.to_string(), T0 + until, None), None),
        Lasting::Refresh(idle_until) => (
            NewTokens::new(
                id.to_string(),
                T0 + 10,
                Some(NewRefreshToken::new(
                    SecretHash::of(&format!("refresh-{id}")),
                    Scope::parse("openid").unwrap(),
                    T0 + idle_until,
                )),
            ),
            Some(T0 + 90 * 24 * 3600),
        ),
    };
    let grant = GrantRecord::new(
        id.clone(),
        ClientId::parse(client).unwrap(),
        Subject::parse(subject).unwrap(),
        Scope::parse("openid").unwrap(),
        vec![ResourceIndicator::parse(RESOURCE).unwrap()],
        now,
        ReleasedClaims::default(),
        now,
        refresh_expires_at,
    )
    .with_status(status);
    assert_eq!(
        store.redeem_code(code, grant, tokens, now).await.unwrap(),
        RedeemOutcome::Redeemed
    );
    id
}

fn subject(value: &str) -> Subject {
    Subject::parse(value).unwrap()
}

fn client(value: &str) -> ClientId {
    ClientId::parse(value).unwrap()
}
