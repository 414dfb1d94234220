//! Property-based tests of the JSON-RPC/MCP message parser, the REST query-string parser
//! and the search text analysis, all through the public API (`McpService`, `RestApi` and
//! `SqliteStore` behind their real fixtures).
//!
//! Each property names what must hold for every generated input. The default run is short
//! (CI); a longer one is `PROPTEST_CASES=100000 cargo test --release -p mcp-api --test
//! properties`. A failure prints the minimal failing input: turn it into a named
//! regression test (no `proptest-regressions/` files are written).
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod mcp_common;
#[path = "common/rest_common.rs"]
mod rest_common;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use mcp_api::store::ErrorKind;
use mcp_api::{Limits, MemoryStore as _, NewMemory, Owner, SearchQuery, SqliteStore};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

/// `cases` per property unless `PROPTEST_CASES` says otherwise; never writes failure files.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}

/// Runs `test` for `cases` values of `strategy` on a runtime the test can block on.
fn run<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let mut runner = TestRunner::new(config(cases));
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{failure}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------------------
// The JSON-RPC/MCP message parser

const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "notifications/initialized",
    "notifications/cancelled",
    "server/discover",
    "resources/list",
    "prompts/get",
];

const TOOLS: &[&str] = &[
    "search",
    "fetch",
    "add_memories",
    "search_memory",
    "list_memories",
    "delete_memories",
    "delete_all_memories",
    "unknown_tool",
];

/// Tool arguments that look almost right: real argument names with any values.
fn tool_arguments() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        prop::sample::select(
            &[
                "query",
                "id",
                "text",
                "memories",
                "memory_ids",
                "limit",
                "page",
                "size",
                "categories"
            ][..]
        )
        .prop_map(str::to_owned),
        ".{0,6}",
    ];
    prop_oneof![
        3 => prop::collection::btree_map(name, json_value(), 0..4)
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        1 => json_value(),
    ]
}

fn params() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => (prop::sample::select(TOOLS), tool_arguments())
            .prop_map(|(name, arguments)| json!({"name": name, "arguments": arguments})),
        1 => Just(json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "proptest", "version": "1"},
        })),
        1 => json_value(),
    ]
}

/// A message shaped like JSON-RPC, with each member right, wrong or missing.
fn rpc_like() -> impl Strategy<Value = Value> {
    let jsonrpc = prop_oneof![4 => Just(json!("2.0")), 1 => Just(json!("1.0")), 1 => json_value()];
    let id = prop_oneof![
        2 => any::<u32>().prop_map(Value::from),
        2 => ".{0,8}".prop_map(Value::from),
        1 => json_value(),
    ];
    let method = prop_oneof![
        4 => prop::sample::select(METHODS).prop_map(Value::from),
        1 => ".{0,12}".prop_map(Value::from),
        1 => json_value(),
    ];
    (
        prop::option::weighted(0.9, jsonrpc),
        prop::option::weighted(0.8, id),
        prop::option::weighted(0.9, method),
        prop::option::weighted(0.8, params()),
        prop::option::weighted(0.1, json_value()),
        prop::option::weighted(0.1, json_value()),
    )
        .prop_map(|(jsonrpc, id, method, params, result, error)| {
            let mut message = Map::new();
            for (name, value) in [
                ("jsonrpc", jsonrpc),
                ("id", id),
                ("method", method),
                ("params", params),
                ("result", result),
                ("error", error),
            ] {
                if let Some(value) = value {
                    message.insert(name.to_owned(), value);
                }
            }
            Value::Object(message)
        })
}

/// A JSON-RPC 2.0 response object answering a request with `id` (absent when the
/// request's id could not be read): `jsonrpc`, exactly one of `result` and `error`, and an
/// error with an integer code and a message.
fn check_rpc_answer(answer: &Value, request_id: Option<&Value>) -> Result<(), TestCaseError> {
    prop_assert_eq!(&answer["jsonrpc"], "2.0", "{}", answer);
    let object = answer.as_object().unwrap();
    prop_assert!(
        object.contains_key("result") != object.contains_key("error"),
        "{answer}"
    );
    if let Some(id) = object.get("id") {
        // Only string and integer ids (what MCP's `RequestId` allows) are compared: a
        // fractional id is echoed as serde_json's best-effort parse of it, which can differ
        // from the sent number in the last digit (`-1.406090152697034e-257` comes back as
        // `-1.4060901526970339e-257`).
        let exact = |id: &Value| id.is_string() || id.is_i64() || id.is_u64();
        if request_id.is_some_and(exact) {
            prop_assert!(request_id == Some(id), "id {id} answers {request_id:?}");
        } else {
            prop_assert!(
                request_id.is_some() && id.is_number(),
                "id {id} answers {request_id:?}"
            );
        }
    }
    if let Some(error) = object.get("error") {
        prop_assert!(error["code"].is_i64(), "{answer}");
        prop_assert!(error["message"].is_string(), "{answer}");
    }
    Ok(())
}

#[test]
fn any_post_body_gets_a_json_rpc_answer_never_a_server_error() {
    let runtime = runtime();
    let harness = runtime.block_on(async { mcp_common::Harness::new() });
    let token = mcp_common::token("proptest-user", mcp_common::READ_WRITE);
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|value| value.to_string().into_bytes()),
        rpc_like().prop_map(|value| value.to_string().into_bytes()),
        prop::collection::vec(rpc_like(), 0..3)
            .prop_map(|batch| Value::from(batch).to_string().into_bytes()),
    ];
    run(512, body, |body| {
        let request = mcp_common::post("/mcp", &token)
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let response = runtime.block_on(harness.send(request));
        let status = response.status();
        let bytes = runtime.block_on(mcp_common::body_bytes(response));
        prop_assert!(!status.is_server_error(), "{status}");
        let parsed = serde_json::from_slice::<Value>(&body);
        if status == StatusCode::ACCEPTED {
            // A notification or a client's response: acknowledged, nothing to answer.
            prop_assert!(bytes.is_empty());
            let message = parsed.unwrap();
            prop_assert!(
                message
                    .get("method")
                    .is_none_or(|_| message.get("id").is_none()),
                "{message}"
            );
            return Ok(());
        }
        let answer: Value = serde_json::from_slice(&bytes).map_err(|_| {
            TestCaseError::fail(format!(
                "{status}: not JSON: {}",
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        let request_id = parsed
            .as_ref()
            .ok()
            .and_then(|m| m.get("id"))
            .filter(|id| id.is_string() || id.is_number());
        check_rpc_answer(&answer, request_id)?;
        match parsed {
            Err(_) => {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST);
                prop_assert_eq!(&answer["error"]["code"], -32700);
            }
            Ok(Value::Object(_)) => {}
            Ok(_) => {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST);
                prop_assert_eq!(&answer["error"]["code"], -32600);
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// The REST query-string parser and the `search_query` filter

/// Memories whose texts hold LIKE's special characters, case variants and non-ASCII.
const CORPUS: &[&str] = &[
    "Coffee: black, no sugar",
    "100% sure about the_underscore",
    "back\\slash and 50% off",
    "ÉCOLE in Paris, café au lait",
    "straße Straße STRASSE",
    "İstanbul trip with a dotless ı",
    "emoji 🎉 party_time",
    "percent %% and underscore __ twice",
    "MiXeD CaSe WoRdS here",
    "quotes ' \" and a backtick `",
];

const LIST_NAMES: &[&str] = &[
    "page",
    "size",
    "app_id",
    "categories",
    "search_query",
    "from_date",
    "to_date",
    "sort_column",
    "sort_direction",
    "user_id",
];

const LIST_VALUES: &[&str] = &[
    "1",
    "0",
    "-1",
    "100",
    "101",
    "4294967296",
    "1e3",
    "created_at",
    "memory",
    "app_name",
    "asc",
    "desc",
    "DESC",
    "work,health",
    "client-a",
    "true",
];

/// `text` percent-encoded in one of its many equivalent spellings: unreserved characters
/// as is or escaped, a space as `+` or `%20`, hex digits in either case.
fn any_query_encoding(text: &str) -> impl Strategy<Value = String> + use<> {
    let chars: Vec<char> = text.chars().collect();
    prop::collection::vec(0u8..3, chars.len()).prop_map(move |choices| {
        let mut out = String::new();
        for (c, choice) in chars.iter().zip(choices) {
            let unreserved = c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~');
            match (choice, *c) {
                (0, ' ') => out.push('+'),
                (0 | 1, c) if unreserved => out.push(c),
                (choice, c) => {
                    let mut utf8 = [0; 4];
                    for byte in c.encode_utf8(&mut utf8).bytes() {
                        if choice == 2 {
                            out.push_str(&format!("%{byte:02x}"));
                        } else {
                            out.push_str(&format!("%{byte:02X}"));
                        }
                    }
                }
            }
        }
        out
    })
}

/// A needle: a piece of a corpus text with its ASCII case changed at random, LIKE's
/// special characters, or anything.
fn needle() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (prop::sample::select(CORPUS), any::<Index>(), 0usize..8, prop::collection::vec(any::<bool>(), 8))
            .prop_map(|(text, start, len, flips)| {
                let chars: Vec<char> = text.chars().collect();
                let start = start.index(chars.len());
                chars[start..(start + len).min(chars.len())]
                    .iter()
                    .zip(flips.into_iter().cycle())
                    .map(|(c, flip)| if flip { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                    .collect()
            }),
        1 => "[%_\\\\ aeAE'ß]{0,4}",
        1 => "[\u{0}-\u{1f}\u{7f}a%_]{1,4}",
        1 => ".{0,6}",
    ]
}

#[test]
fn any_list_query_string_is_answered_without_a_server_error() {
    let runtime = runtime();
    let api = runtime.block_on(async { rest_common::Api::new() });
    let token = rest_common::alice();
    runtime.block_on(api.create(&token, "a memory to list", &["work"]));
    let value = prop_oneof![
        3 => prop::sample::select(LIST_VALUES).prop_map(str::to_owned),
        1 => Just(String::new()),
        2 => any::<String>(),
    ];
    let name = prop_oneof![
        4 => prop::sample::select(LIST_NAMES).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    let pairs = prop::collection::vec((name, value), 0..6);
    let query = (pairs, "[A-Za-z0-9%&=+._~-]{0,24}").prop_map(|(pairs, raw)| {
        let encode = |text: &str| {
            percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        let mut query: Vec<String> = pairs
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect();
        query.push(raw);
        query.join("&")
    });
    let path = prop_oneof![
        4 => Just("/api/v1/memories".to_owned()),
        1 => Just("/api/v1/memories/".to_owned()),
        1 => "/api/v1/memories/[A-Za-z0-9%._~-]{0,40}",
        1 => "/api/v1/memories/[0-9a-f-]{36}/(access-log|related)",
    ];
    run(512, (path, query), |(path, query)| {
        let uri = format!("{path}?{query}");
        prop_assume!(http::Uri::try_from(uri.as_str()).is_ok());
        let reply = runtime.block_on(api.get(&token, &uri));
        prop_assert!(
            !reply.status.is_server_error(),
            "{}: {:#}",
            reply.status,
            reply.json
        );
        if reply.status.is_client_error() {
            prop_assert!(reply.json["error"].is_string(), "{:#}", reply.json);
            prop_assert!(reply.json["message"].is_string(), "{:#}", reply.json);
        } else {
            prop_assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.json);
        }
        Ok(())
    });
}

#[test]
fn search_query_filter_finds_exactly_the_texts_that_contain_it() {
    // The query string is decoded (any equivalent spelling of the needle reads the same)
    // and the needle reaches the SQL LIKE pattern literally: `%`, `_` and `\` are plain
    // characters, and only ASCII letters match across case.
    let runtime = runtime();
    let api = runtime.block_on(async { rest_common::Api::new() });
    let token = rest_common::alice();
    for text in CORPUS {
        runtime.block_on(api.create(&token, text, &[]));
    }
    let strategy =
        needle().prop_flat_map(|needle| (Just(needle.clone()), any_query_encoding(&needle)));
    run(256, strategy, |(needle, encoded)| {
        let path = format!("/api/v1/memories?size=100&search_query={encoded}");
        let reply = runtime.block_on(api.get(&token, &path));
        prop_assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.json);
        let found: BTreeSet<&str> = reply.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["content"].as_str().unwrap())
            .collect();
        let lower = needle.to_ascii_lowercase();
        let expected: BTreeSet<&str> = CORPUS
            .iter()
            .copied()
            .filter(|text| text.to_ascii_lowercase().contains(&lower))
            .collect();
        prop_assert_eq!(found, expected);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Search text analysis and snippets

/// Words that stress text analysis: case mappings that change length, accents, ligatures,
/// apostrophes, scripts without case, combining marks, emoji and joiners.
const HARD_WORDS: &[&str] = &[
    "İstanbul",
    "ıi",
    "straße",
    "ﬁnancial",
    "Σίσυφος",
    "ΣΑΣ",
    "café",
    "cafe\u{301}",
    "naïve",
    "user's",
    "don’t",
    "we've",
    "東京",
    "مرحبا",
    "👩\u{200d}💻",
    "🎉",
    "Ⅻ",
    "ǅemal",
    "ﬀ",
    "running",
    "favourite",
    "children",
    "went",
    "x̧̢̛",
    "\u{feff}zero\u{200b}width",
    "12345",
    "a'b'c",
];

fn text_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(HARD_WORDS).prop_map(str::to_owned),
        1 => "[a-zA-Z]{1,70}",
        1 => any::<String>(),
    ]
}

/// Text of words and separators: spaces, punctuation, newlines.
fn text() -> impl Strategy<Value = String> {
    let separator =
        prop::sample::select(&[" ", "  ", ", ", ". ", "\n", "'", "’", "-", "…", "*"][..]);
    prop::collection::vec((text_piece(), separator), 1..40).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(word, separator)| [word, separator.to_owned()])
            .collect()
    })
}

/// A query: words of the texts, hard words, or anything, up to the size limit and over.
fn search_text(texts: &[String]) -> impl Strategy<Value = String> + use<> {
    let words: Vec<String> = texts
        .iter()
        .flat_map(|text| {
            text.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .chain(HARD_WORDS.iter().map(|w| (*w).to_owned()))
        .collect();
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(words), 0..6).prop_map(|w| w.join(" ")),
        1 => any::<String>(),
        1 => ".{1000,1100}",
    ]
}

#[test]
fn search_of_any_text_never_fails_and_snippets_come_from_the_memory() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("memories.db"), Limits::default()).unwrap();
    let limits = Limits::default();
    let owners = AtomicUsize::new(0);
    let strategy = prop::collection::vec(text(), 1..4)
        .prop_flat_map(|texts| (Just(texts.clone()), search_text(&texts), 1u32..=50));
    run(128, strategy, |(texts, query, limit)| {
        let owner = Owner::new(format!("owner-{}", owners.fetch_add(1, Ordering::SeqCst))).unwrap();
        let new: Vec<NewMemory> = texts
            .iter()
            .filter(|text| text.len() <= limits.max_text_bytes)
            .map(|text| NewMemory::new(text.clone(), "proptest"))
            .collect();
        let stored: Vec<String> = match runtime.block_on(store.add(&owner, new)) {
            Ok(memories) => memories.into_iter().map(|m| m.text).collect(),
            Err(error) => {
                prop_assert!(
                    matches!(error.kind(), ErrorKind::InvalidInput { .. }),
                    "{error}"
                );
                Vec::new()
            }
        };
        let result = runtime
            .block_on(store.search(&owner, &SearchQuery::new(query.clone()).with_limit(limit)));
        if query.len() > limits.max_query_bytes {
            let error = result.unwrap_err();
            prop_assert!(
                matches!(error.kind(), ErrorKind::InvalidInput { field: "query", .. }),
                "{error}"
            );
            return Ok(());
        }
        let hits =
            result.map_err(|error| TestCaseError::fail(format!("search failed: {error}")))?;
        prop_assert!(hits.len() <= usize::try_from(limit).unwrap());
        for hit in &hits {
            prop_assert!(
                stored.contains(&hit.memory.text),
                "a hit that is not the owner's"
            );
            // Without the cut marks and the highlighting, a snippet is a piece of the text.
            let text = &hit.memory.text;
            if !text.contains("**") {
                let plain = hit.snippet.replace("**", "");
                let start_cut = plain.strip_prefix('…');
                let both_cut = start_cut.and_then(|p| p.strip_suffix('…'));
                let end_cut = plain.strip_suffix('…');
                let candidates = [Some(plain.as_str()), start_cut, end_cut, both_cut];
                prop_assert!(
                    candidates
                        .into_iter()
                        .flatten()
                        .any(|piece| text.contains(piece)),
                    "snippet {:?} of {:?}",
                    hit.snippet,
                    text
                );
            }
        }
        Ok(())
    });
}
