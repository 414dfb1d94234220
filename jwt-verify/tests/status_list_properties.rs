//! Property-based tests of the status list parser and the Status List Token check: for
//! every generated input they return a value or a typed refusal, never panic, and read the
//! bits the draft's packing puts there. Run longer with `PROPTEST_CASES=100000`.
#![cfg(feature = "status-list")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use jwks_verify::jwks::{BoxFuture, FetchError, FetchRequest, HttpFetcher};
use jwks_verify::status_list::{
    StatusAction, StatusCheck, StatusList, StatusListCache, StatusListConfig, StatusUpdate,
};
use jwks_verify::{Algorithm, AlgorithmSet, ErrorKind, KeySet, Policy, Verifier};
use proptest::prelude::*;
use serde_json::{Value, json};

mod common;
use common::{AUDIENCE, ISSUER, TestKey, b64};

const NOW: u64 = 1_800_000_000;
const URI: &str = "https://issuer.example/statuslists/1";

fn key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate("k1"))
}

fn key_set() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| {
        KeySet::from_jwks(
            common::jwks(&[key()]).as_bytes(),
            AlgorithmSet::only(Algorithm::RS256),
        )
        .unwrap()
    })
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn bits() -> impl Strategy<Value = u8> {
    prop_oneof![Just(1u8), Just(2), Just(4), Just(8)]
}

/// Digests `body` as the answer to a fetch of [`URI`] and reads index 0.
fn digest(body: Vec<u8>) -> (StatusUpdate, StatusCheck) {
    let now = Instant::now();
    let mut cache =
        StatusListCache::new(&Policy::new(ISSUER, "api"), StatusListConfig::new()).unwrap();
    cache.request(now, URI);
    let StatusAction::Fetch { uri, .. } = cache.poll(now) else {
        panic!("a fetch is due");
    };
    let response = http::Response::builder()
        .header("content-type", "application/statuslist+jwt")
        .body(body)
        .unwrap();
    let update = cache.on_response(now, NOW, &uri, Ok(response), Some(key_set()));
    (update, cache.check(now, NOW, URI, 0))
}

fn list_claims(status_list: &Value) -> Value {
    json!({"iss": ISSUER, "sub": URI, "iat": NOW, "ttl": 30, "status_list": status_list})
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![Just(1u8), Just(2), Just(3), Just(8), Just(255)].prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("bits".to_owned()),
                    Just("lst".to_owned()),
                    ".{0,4}".prop_map(String::from)
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Answers every status list fetch with 404.
struct NotFound;

impl HttpFetcher for NotFound {
    fn get(&self, _: FetchRequest) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, FetchError>> {
        Box::pin(async { Err(FetchError::Status(404)) })
    }
}

/// A verifier with status lists on (and the runtime its refresh task runs on).
fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<(tokio::runtime::Runtime, Verifier)> = OnceLock::new();
    &VERIFIER
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let verifier = {
                let _entered = runtime.enter();
                Verifier::builder(Policy::new(ISSUER, AUDIENCE))
                    .static_jwks(common::jwks(&[key()]))
                    .http_fetcher(NotFound)
                    .status_lists(StatusListConfig::new())
                    .build()
                    .unwrap()
            };
            (runtime, verifier)
        })
        .1
}

proptest! {
    #![proptest_config(common::proptest_config(256))]

    /// Any `lst` text, any `bits`: a list or a typed error, never a panic.
    #[test]
    fn arbitrary_lst_text_never_panics(bits in any::<u8>(), lst in any::<String>()) {
        let _ = StatusList::from_lst(bits, &lst, 4096);
    }

    /// Any bytes behind the base64url (broken zlib streams included): never a panic, and
    /// never a list over the limit.
    #[test]
    fn arbitrary_compressed_bytes_never_panic(
        bits in bits(),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        cut in any::<prop::sample::Index>(),
    ) {
        let _ = StatusList::from_lst(bits, &b64(&bytes), 64);
        // A real stream cut anywhere.
        let stream = zlib(&bytes);
        let cut = cut.index(stream.len() + 1);
        if let Ok(list) = StatusList::from_lst(bits, &b64(&stream[..cut]), 1024) {
            prop_assert!(list.len() <= 8 * 1024);
        }
    }

    /// Every index of a list reads the bits the draft's packing put there, and indexes past
    /// the end (up to `u64::MAX`) read nothing.
    #[test]
    fn lookups_match_the_packing(
        bits in bits(),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        far in any::<u64>(),
    ) {
        let list = StatusList::from_lst(bits, &b64(&zlib(&bytes)), 1024).unwrap();
        let per_byte = 8 / u64::from(bits);
        prop_assert_eq!(list.len(), bytes.len() as u64 * per_byte);
        for index in 0..list.len() {
            let byte = bytes[usize::try_from(index / per_byte).unwrap()];
            let shift = (index % per_byte) * u64::from(bits);
            let expected = (u16::from(byte) >> shift) & ((1u16 << bits) - 1);
            prop_assert_eq!(list.status(index).map(u16::from), Some(expected));
        }
        prop_assert_eq!(list.status(list.len().max(far)), None);
    }

    /// Any response body at all: the cache refuses it with a typed failure, never panics,
    /// and keeps no list.
    #[test]
    fn arbitrary_response_bodies_are_refused(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let (update, check) = digest(body);
        prop_assert!(matches!(update, StatusUpdate::Failed(_)));
        prop_assert_eq!(check, StatusCheck::Unknown);
    }

    /// A correctly signed list token with any `status_list` member: loaded only when it is
    /// a well-formed list, never a panic.
    #[test]
    fn signed_tokens_with_arbitrary_status_list_members_never_panic(member in json_value()) {
        let header = json!({"alg": "RS256", "kid": "k1", "typ": "statuslist+jwt"});
        let token = key().sign(&header, &list_claims(&member));
        let (update, _) = digest(token.into_bytes());
        let well_formed = member.get("bits").and_then(Value::as_u64).is_some_and(|b| [1, 2, 4, 8].contains(&b))
            && member.get("lst").and_then(Value::as_str).is_some_and(|lst| StatusList::from_lst(1, lst, 1 << 24).is_ok());
        prop_assert_eq!(matches!(update, StatusUpdate::Loaded { .. }), well_formed, "{}", member);
    }

    /// A correctly signed access token with any `status` claim: refused with a typed error
    /// (malformed, not allowed, or unavailable since no list can be fetched) or accepted
    /// only when it names no list at all; never a panic.
    #[test]
    fn signed_tokens_with_arbitrary_status_claims_never_panic(
        status in prop_oneof![
            json_value(),
            (any::<u64>(), ".{0,40}").prop_map(|(idx, uri)| json!({"status_list": {"idx": idx, "uri": uri}})),
            (any::<u64>(), "[a-z/]{0,12}").prop_map(|(idx, path)| json!({"status_list": {"uri": format!("{ISSUER}/{path}"), "idx": idx}})),
        ],
    ) {
        let mut claims = common::claims(common::unix_now());
        claims["status"] = status.clone();
        let token = key().sign(&key().header(), &claims);
        match verifier().try_verify::<Value>(&token) {
            Ok(verified) => prop_assert_eq!(&verified["status"], &status),
            Err(error) => prop_assert!(
                matches!(
                    error.kind(),
                    ErrorKind::InvalidClaim | ErrorKind::StatusUnavailable
                ),
                "{:?} for {}",
                error.kind(),
                status
            ),
        }
    }
}
