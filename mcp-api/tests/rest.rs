//! The REST API over the real stack: `BearerAuthLayer<AccessClaims>` verifying RS256 tokens
//! signed in the test, `RestApi`, and a `SqliteStore` in a temporary directory on a clock
//! the test moves. Happy paths, pagination and filters, validation and limits, scopes,
//! isolation attacks (one test per attack), and the OpenAPI document against the router.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/rest_common.rs"]
mod rest_common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use mcp_api::rest::{RequiredScope, RestApi, Route, RouteSpec, openapi_document, routes};
use mcp_api::{Limits, SqliteStore};
use serde_json::{Value, json};
use tower::ServiceExt;

use rest_common::{
    ALICE, APP_A, APP_B, Api, BASE_URL, BOB, ISSUER, READ, Reply, T0, WRITE, alice, bob, request,
    resource, token,
};

const MEMORIES: &str = "/api/v1/memories/";

fn memory_path(id: &str) -> String {
    format!("/api/v1/memories/{id}")
}

fn id_of(memory: &Value) -> String {
    memory["id"].as_str().unwrap().to_owned()
}

fn contents(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["content"].as_str().unwrap())
        .collect()
}

// ----- Happy paths ---------------------------------------------------------------------------

#[tokio::test]
async fn create_answers_201_with_the_memory_written_by_the_token_client() {
    let api = Api::new();
    let reply = api
        .post(
            &alice(),
            MEMORIES,
            &json!({"text": "Allergic to peanuts", "metadata": {"source": "chat"}, "categories": [" Health ", "health", "Food"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.json);
    let memory = &reply.json;
    assert_eq!(memory["content"], "Allergic to peanuts");
    assert_eq!(memory["app_name"], APP_A);
    assert_eq!(memory["state"], "active");
    assert_eq!(memory["categories"], json!(["food", "health"]));
    assert_eq!(memory["metadata_"], json!({"source": "chat"}));
    assert_eq!(memory["created_at"], T0);
    assert_eq!(memory["updated_at"], T0);
    assert_eq!(
        reply.headers[LOCATION],
        memory_path(&id_of(memory)).as_str()
    );
    assert_eq!(reply.headers["cache-control"], "no-store");

    let stored = api.memories_of(ALICE).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.to_string(), id_of(memory));
    assert_eq!(stored[0].app, APP_A);
}

#[tokio::test]
async fn create_without_optional_fields_has_empty_metadata_and_categories() {
    let api = Api::new();
    let reply = api
        .post(&alice(), MEMORIES, &json!({"text": "plain"}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json["metadata_"], json!({}));
    assert_eq!(reply.json["categories"], json!([]));
    let nulls = api
        .post(
            &alice(),
            MEMORIES,
            &json!({"text": "nulls", "metadata": null, "categories": null}),
        )
        .await;
    assert_eq!(nulls.status, StatusCode::CREATED, "{:#}", nulls.json);
}

#[tokio::test]
async fn get_returns_the_memory_and_records_a_rest_get_access() {
    let api = Api::new();
    let created = api.create(&alice(), "Likes green tea", &["drink"]).await;
    let id = id_of(&created);

    let reader = token(ALICE, READ, APP_B);
    let reply = api.get(&reader, &memory_path(&id)).await;
    assert_eq!(reply.status, StatusCode::OK);
    // The created memory plus `text`, the name OpenMemory's UI reads on this route.
    let mut expected = created.clone();
    expected["text"] = created["content"].clone();
    assert_eq!(reply.json, expected);

    let log = api
        .get(&reader, &format!("{}/access-log", memory_path(&id)))
        .await;
    assert_eq!(log.status, StatusCode::OK, "{:#}", log.json);
    assert_eq!(log.json["total"], 1);
    assert_eq!(log.json["page"], 1);
    assert_eq!(log.json["page_size"], 10);
    assert_eq!(
        log.json["logs"],
        json!([{"accessed_at": api.now(), "app_name": APP_B, "via": "rest:get"}])
    );
}

#[tokio::test]
async fn update_replaces_the_text_and_keeps_metadata_unless_given() {
    let api = Api::new();
    let created = api
        .post(
            &alice(),
            MEMORIES,
            &json!({"text": "old", "metadata": {"k": 1}}),
        )
        .await
        .json;
    let id = id_of(&created);
    api.advance_seconds(5);

    let reply = api
        .put(
            &alice(),
            &memory_path(&id),
            &json!({"memory_content": "new"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.json);
    assert_eq!(reply.json["content"], "new");
    assert_eq!(reply.json["metadata_"], json!({"k": 1}));
    assert_eq!(reply.json["created_at"], T0);
    assert_eq!(reply.json["updated_at"], T0 + 5);

    let reply = api
        .put(
            &alice(),
            &memory_path(&id),
            &json!({"memory_content": "newer", "metadata": {"k": 2}}),
        )
        .await;
    assert_eq!(reply.json["metadata_"], json!({"k": 2}));
    assert_eq!(api.memories_of(ALICE).await[0].text, "newer");
}

#[tokio::test]
async fn delete_removes_the_memories_and_counts_them() {
    let api = Api::new();
    let first = id_of(&api.create(&alice(), "one", &[]).await);
    let second = id_of(&api.create(&alice(), "two", &[]).await);
    let kept = id_of(&api.create(&alice(), "three", &[]).await);

    let reply = api
        .delete(&alice(), MEMORIES, &json!({"memory_ids": [first, second]}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.json);
    assert_eq!(reply.json, json!({"deleted": 2}));

    api.get(&alice(), &memory_path(&first))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let remaining = api.memories_of(ALICE).await;
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].id.to_string(), kept);

    let again = api
        .delete(
            &alice(),
            "/api/v1/memories",
            &json!({"memory_ids": [first]}),
        )
        .await;
    assert_eq!(again.json, json!({"deleted": 0}));
}

#[tokio::test]
async fn archive_hides_memories_from_the_list_but_not_from_filter_with_show_archived() {
    let api = Api::new();
    let archived = id_of(&api.create(&alice(), "archived one", &[]).await);
    api.create(&alice(), "active one", &[]).await;

    let reply = api
        .post(
            &alice(),
            "/api/v1/memories/actions/archive",
            &json!({"memory_ids": [archived]}),
        )
        .await;
    assert_eq!(reply.json, json!({"updated": 1}));
    let again = api
        .post(
            &alice(),
            "/api/v1/memories/actions/archive",
            &json!({"memory_ids": [archived]}),
        )
        .await;
    assert_eq!(again.json, json!({"updated": 0}));

    let list = api.get(&alice(), MEMORIES).await;
    assert_eq!(contents(&list.json), ["active one"]);
    let hidden = api
        .post(&alice(), "/api/v1/memories/filter", &json!({}))
        .await;
    assert_eq!(contents(&hidden.json), ["active one"]);
    let shown = api
        .post(
            &alice(),
            "/api/v1/memories/filter",
            &json!({"show_archived": true}),
        )
        .await;
    assert_eq!(contents(&shown.json), ["active one", "archived one"]);
    assert_eq!(
        api.get(&alice(), &memory_path(&archived)).await.json["state"],
        "archived"
    );
}

#[tokio::test]
async fn pause_defaults_to_paused_and_can_resume() {
    let api = Api::new();
    let id = id_of(&api.create(&alice(), "pausable", &[]).await);
    let pause = "/api/v1/memories/actions/pause";

    let reply = api
        .post(&alice(), pause, &json!({"memory_ids": [id]}))
        .await;
    assert_eq!(reply.json, json!({"updated": 1}));
    assert_eq!(api.memories_of(ALICE).await[0].state.as_str(), "paused");
    // Paused memories are still listed (OpenMemory excludes only archived and deleted).
    assert_eq!(api.get(&alice(), MEMORIES).await.json["total"], 1);

    let reply = api
        .post(
            &alice(),
            pause,
            &json!({"memory_ids": [id], "state": "active"}),
        )
        .await;
    assert_eq!(reply.json, json!({"updated": 1}));
    assert_eq!(api.memories_of(ALICE).await[0].state.as_str(), "active");

    for state in ["deleted", "PAUSED"] {
        api.post(
            &alice(),
            pause,
            &json!({"memory_ids": [id], "state": state}),
        )
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    }
    assert_eq!(api.memories_of(ALICE).await[0].state.as_str(), "active");
}

#[tokio::test]
async fn categories_are_counted_most_used_first() {
    let api = Api::new();
    api.create(&alice(), "a", &["work", "health"]).await;
    api.create(&alice(), "b", &["work"]).await;
    let reply = api.get(&alice(), "/api/v1/memories/categories").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json,
        json!({"categories": [{"name": "work", "count": 2}, {"name": "health", "count": 1}], "total": 2})
    );
}

#[tokio::test]
async fn related_returns_memories_sharing_categories_up_to_size() {
    let api = Api::new();
    let subject = id_of(&api.create(&alice(), "subject", &["health", "food"]).await);
    api.create(&alice(), "shares one", &["food"]).await;
    api.create(&alice(), "shares two", &["food", "health"])
        .await;
    api.create(&alice(), "unrelated", &["work"]).await;

    let path = format!("{}/related", memory_path(&subject));
    let reply = api.get(&alice(), &path).await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.json);
    assert_eq!(contents(&reply.json), ["shares two", "shares one"]);
    assert_eq!(reply.json["total"], 2);

    let one = api.get(&alice(), &format!("{path}?size=1")).await;
    assert_eq!(contents(&one.json), ["shares two"]);
    assert_eq!(one.json["total"], 1);
}

#[tokio::test]
async fn stats_count_memories_created_and_accessed_per_app() {
    let api = Api::new();
    let id = id_of(&api.create(&alice(), "from a", &[]).await);
    api.create(&token(ALICE, WRITE, APP_B), "from b", &[]).await;
    api.get(&token(ALICE, READ, APP_B), &memory_path(&id)).await;

    let reply = api.get(&alice(), "/api/v1/stats/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json,
        json!({
            "total_memories": 2,
            "total_apps": 2,
            "apps": [
                {"name": APP_A, "memories_created": 1, "memories_accessed": 0},
                {"name": APP_B, "memories_created": 1, "memories_accessed": 1},
            ],
        })
    );
}

#[tokio::test]
async fn access_log_is_paginated_newest_first() {
    let api = Api::new();
    let id = id_of(&api.create(&alice(), "read often", &[]).await);
    for _ in 0..3 {
        api.get(&alice(), &memory_path(&id)).await;
        api.advance_seconds(1);
    }
    let path = format!("{}/access-log?page=2&page_size=2", memory_path(&id));
    let reply = api.get(&alice(), &path).await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.json);
    assert_eq!(reply.json["total"], 3);
    assert_eq!(reply.json["page"], 2);
    assert_eq!(reply.json["page_size"], 2);
    let logs = reply.json["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["accessed_at"], T0 + 1);
}

#[tokio::test]
async fn every_path_matches_with_and_without_a_trailing_slash() {
    let api = Api::new();
    let id = id_of(&api.create(&alice(), "slashes", &[]).await);
    for path in [
        "/api/v1/memories".to_owned(),
        "/api/v1/memories/".to_owned(),
        "/api/v1/stats".to_owned(),
        "/api/v1/stats/".to_owned(),
        "/api/v1/memories/categories/".to_owned(),
        format!("{}/", memory_path(&id)),
        format!("{}/related/", memory_path(&id)),
    ] {
        let reply = api.get(&alice(), &path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {:#}", reply.json);
    }
}

// ----- Pagination and filters ----------------------------------------------------------------

#[tokio::test]
async fn list_pages_default_to_ten_newest_first() {
    let api = Api::new();
    for n in 0..12 {
        api.create(&alice(), &format!("memory {n:02}"), &[]).await;
    }
    let first = api.get(&alice(), MEMORIES).await.json;
    assert_eq!(first["total"], 12);
    assert_eq!(first["page"], 1);
    assert_eq!(first["size"], 10);
    assert_eq!(first["pages"], 2);
    assert_eq!(contents(&first)[0], "memory 11");
    assert_eq!(contents(&first).len(), 10);

    let second = api.get(&alice(), "/api/v1/memories/?page=2").await.json;
    assert_eq!(contents(&second), ["memory 01", "memory 00"]);

    let third = api
        .get(&alice(), "/api/v1/memories/?page=3&size=5")
        .await
        .json;
    assert_eq!(contents(&third), ["memory 01", "memory 00"]);
    assert_eq!(third["pages"], 3);

    let beyond = api.get(&alice(), "/api/v1/memories/?page=9").await.json;
    assert_eq!(beyond["items"], json!([]));
    assert_eq!(beyond["total"], 12);
}

/// Tea (app A, drink) at T0, Coffee (app B, drink + food) at T0+1, Pasta (app A, food) at T0+2.
async fn three_memories(api: &Api) -> [String; 3] {
    let tea = id_of(&api.create(&alice(), "Tea in the morning", &["drink"]).await);
    let coffee = id_of(
        &api.create(
            &token(ALICE, WRITE, APP_B),
            "Coffee at noon",
            &["drink", "food"],
        )
        .await,
    );
    let pasta = id_of(&api.create(&alice(), "Pasta recipe", &["food"]).await);
    [tea, coffee, pasta]
}

#[tokio::test]
async fn list_filters_by_app_categories_text_and_dates() {
    let api = Api::new();
    three_memories(&api).await;
    let cases: [(String, &[&str]); 9] = [
        (format!("app_id={APP_B}"), &["Coffee at noon"]),
        (
            "categories=food".to_owned(),
            &["Pasta recipe", "Coffee at noon"],
        ),
        (
            "categories=drink,+Food+".to_owned(),
            &["Pasta recipe", "Coffee at noon", "Tea in the morning"],
        ),
        ("search_query=COFFEE".to_owned(), &["Coffee at noon"]),
        ("search_query=in+the".to_owned(), &["Tea in the morning"]),
        (
            format!("from_date={}", T0 + 1),
            &["Pasta recipe", "Coffee at noon"],
        ),
        (
            format!("to_date={}", T0 + 1),
            &["Coffee at noon", "Tea in the morning"],
        ),
        (
            format!("from_date={0}&to_date={0}", T0 + 1),
            &["Coffee at noon"],
        ),
        (
            format!("app_id={APP_A}&categories=food&search_query=pasta"),
            &["Pasta recipe"],
        ),
    ];
    for (query, expected) in cases {
        let reply = api.get(&alice(), &format!("{MEMORIES}?{query}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {:#}", reply.json);
        assert_eq!(contents(&reply.json), expected, "{query}");
        assert_eq!(reply.json["total"], expected.len(), "{query}");
    }
}

#[tokio::test]
async fn list_sorts_by_every_column_in_both_directions() {
    let api = Api::new();
    let [tea, ..] = three_memories(&api).await;
    api.advance_seconds(10);
    api.put(
        &alice(),
        &memory_path(&tea),
        &json!({"memory_content": "Tea in the morning"}),
    )
    .await;

    let cases: [(&str, &[&str]); 6] = [
        (
            "sort_column=created_at&sort_direction=asc",
            &["Tea in the morning", "Coffee at noon", "Pasta recipe"],
        ),
        (
            "sort_column=updated_at&sort_direction=desc",
            &["Tea in the morning", "Pasta recipe", "Coffee at noon"],
        ),
        (
            "sort_column=memory&sort_direction=asc",
            &["Coffee at noon", "Pasta recipe", "Tea in the morning"],
        ),
        (
            "sort_column=memory&sort_direction=desc",
            &["Tea in the morning", "Pasta recipe", "Coffee at noon"],
        ),
        (
            "sort_column=app_name&sort_direction=desc",
            &["Coffee at noon", "Pasta recipe", "Tea in the morning"],
        ),
        (
            "sort_direction=asc",
            &["Tea in the morning", "Coffee at noon", "Pasta recipe"],
        ),
    ];
    for (query, expected) in cases {
        let reply = api.get(&alice(), &format!("{MEMORIES}?{query}")).await;
        assert_eq!(contents(&reply.json), expected, "{query}");
    }
    api.get(&alice(), "/api/v1/memories/?sort_column=owner")
        .await
        .assert_invalid("sort_column");
    api.get(&alice(), "/api/v1/memories/?sort_direction=up")
        .await
        .assert_invalid("sort_direction");
}

#[tokio::test]
async fn filter_takes_the_same_filters_in_a_body() {
    let api = Api::new();
    three_memories(&api).await;
    let filter = "/api/v1/memories/filter";
    let cases: [(Value, &[&str]); 6] = [
        (json!({"app_ids": [APP_B]}), &["Coffee at noon"]),
        (
            json!({"categories": ["FOOD"]}),
            &["Pasta recipe", "Coffee at noon"],
        ),
        (json!({"search_query": "recipe"}), &["Pasta recipe"]),
        (
            json!({"from_date": T0, "to_date": T0 + 1, "sort_direction": "asc"}),
            &["Tea in the morning", "Coffee at noon"],
        ),
        (
            json!({"sort_column": "memory", "sort_direction": "asc", "page": 1, "size": 2}),
            &["Coffee at noon", "Pasta recipe"],
        ),
        (
            json!({"search_query": null, "app_ids": null, "categories": null, "sort_column": null}),
            &["Pasta recipe", "Coffee at noon", "Tea in the morning"],
        ),
    ];
    for (body, expected) in cases {
        let reply = api.post(&alice(), filter, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}: {:#}", reply.json);
        assert_eq!(contents(&reply.json), expected, "{body}");
    }
    let paged = api
        .post(&alice(), filter, &json!({"page": 2, "size": 2}))
        .await
        .json;
    assert_eq!(contents(&paged), ["Tea in the morning"]);
    assert_eq!(paged["pages"], 2);

    api.post(&alice(), filter, &json!({"app_ids": [APP_A, APP_B]}))
        .await
        .assert_invalid("app_ids");
}

// ----- Validation and limits -----------------------------------------------------------------

/// Sends `request` as Alice, expects a 422 naming `field`, and checks nothing changed.
async fn assert_refused_without_effect(api: &Api, request: Request<Full<Bytes>>, field: &str) {
    let before = api.memories_of(ALICE).await;
    let reply = api.send(request).await;
    reply.assert_invalid(field);
    assert_eq!(api.memories_of(ALICE).await, before, "{field}");
}

fn as_alice(method: Method, path: &str, body: &Value) -> Request<Full<Bytes>> {
    request(method, path, Some(&alice()), Some(body))
}

#[tokio::test]
async fn every_store_limit_is_a_422_naming_the_field_and_nothing_is_written() {
    let api = Api::new();
    let limits = Limits::default();
    let id = id_of(&api.create(&alice(), "existing", &[]).await);
    let too_many_ids: Vec<&str> = vec![id.as_str(); limits.max_batch + 1];
    let long_text = "a".repeat(limits.max_text_bytes + 1);
    let big_metadata = json!({"k": "v".repeat(limits.max_metadata_bytes)});
    let many_categories: Vec<String> = (0..=limits.max_categories)
        .map(|n| format!("c{n}"))
        .collect();
    let long_category = "c".repeat(limits.max_category_chars + 1);
    let post = Method::POST;

    let cases = [
        (
            as_alice(post.clone(), MEMORIES, &json!({"text": long_text})),
            "text",
        ),
        (
            as_alice(post.clone(), MEMORIES, &json!({"text": " \n "})),
            "text",
        ),
        (
            as_alice(post.clone(), MEMORIES, &json!({"text": "a\u{0}b"})),
            "text",
        ),
        (
            as_alice(
                post.clone(),
                MEMORIES,
                &json!({"text": "t", "metadata": big_metadata}),
            ),
            "metadata",
        ),
        (
            as_alice(
                post.clone(),
                MEMORIES,
                &json!({"text": "t", "categories": many_categories}),
            ),
            "categories",
        ),
        (
            as_alice(
                post.clone(),
                MEMORIES,
                &json!({"text": "t", "categories": [long_category]}),
            ),
            "categories",
        ),
        (
            as_alice(
                post.clone(),
                MEMORIES,
                &json!({"text": "t", "categories": ["  "]}),
            ),
            "categories",
        ),
        (
            as_alice(
                Method::PUT,
                &memory_path(&id),
                &json!({"memory_content": long_text}),
            ),
            "memory_content",
        ),
        (
            as_alice(
                Method::PUT,
                &memory_path(&id),
                &json!({"memory_content": "t", "metadata": big_metadata}),
            ),
            "metadata",
        ),
        (
            as_alice(
                Method::DELETE,
                MEMORIES,
                &json!({"memory_ids": too_many_ids}),
            ),
            "memory_ids",
        ),
        (
            as_alice(
                post.clone(),
                "/api/v1/memories/actions/archive",
                &json!({"memory_ids": too_many_ids}),
            ),
            "memory_ids",
        ),
        (
            as_alice(
                post.clone(),
                "/api/v1/memories/actions/pause",
                &json!({"memory_ids": too_many_ids}),
            ),
            "memory_ids",
        ),
        (
            as_alice(
                post.clone(),
                "/api/v1/memories/filter",
                &json!({"size": limits.max_page_size + 1}),
            ),
            "size",
        ),
        (
            as_alice(post.clone(), "/api/v1/memories/filter", &json!({"page": 0})),
            "page",
        ),
        (
            as_alice(
                post.clone(),
                "/api/v1/memories/filter",
                &json!({"search_query": "q".repeat(limits.max_query_bytes + 1)}),
            ),
            "search_query",
        ),
        (
            as_alice(
                post.clone(),
                "/api/v1/memories/filter",
                &json!({"categories": many_categories}),
            ),
            "categories",
        ),
        (
            as_alice(
                post.clone(),
                "/api/v1/memories/filter",
                &json!({"app_ids": ["a", "b"]}),
            ),
            "app_ids",
        ),
    ];
    for (request, field) in cases {
        assert_refused_without_effect(&api, request, field).await;
    }

    let get = |path: String| request(Method::GET, &path, Some(&alice()), None);
    let query_cases = [
        (
            get(format!("{MEMORIES}?size={}", limits.max_page_size + 1)),
            "size",
        ),
        (get(format!("{MEMORIES}?size=0")), "size"),
        (get(format!("{MEMORIES}?page=0")), "page"),
        (get(format!("{MEMORIES}?page=abc")), "page"),
        (get(format!("{MEMORIES}?page=-1")), "page"),
        (get(format!("{MEMORIES}?size=99999999999")), "size"),
        (
            get(format!(
                "{MEMORIES}?search_query={}",
                "q".repeat(limits.max_query_bytes + 1)
            )),
            "search_query",
        ),
        (
            get(format!(
                "{MEMORIES}?categories={}",
                ",".repeat(limits.max_categories)
            )),
            "categories",
        ),
        (get(format!("{MEMORIES}?to_date={}0", i64::MAX)), "to_date"),
        (
            get(format!(
                "{}/access-log?page_size={}",
                memory_path(&id),
                limits.max_page_size + 1
            )),
            "page_size",
        ),
        (
            get(format!("{}/access-log?page=0", memory_path(&id))),
            "page",
        ),
        (
            get(format!(
                "{}/related?size={}",
                memory_path(&id),
                limits.max_search_limit + 1
            )),
            "size",
        ),
        (get(format!("{}/related?size=0", memory_path(&id))), "size"),
    ];
    for (request, field) in query_cases {
        assert_refused_without_effect(&api, request, field).await;
    }
    assert_eq!(api.memories_of(ALICE).await.len(), 1);
}

#[tokio::test]
async fn filters_that_cannot_match_answer_an_empty_page() {
    let api = Api::new();
    api.create(&alice(), "Tea in the morning", &["drink"]).await;
    let total = |reply: Reply| {
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.json);
        reply.json["total"].as_u64().unwrap()
    };
    let long_app = "a".repeat(256);
    let long_category = "c".repeat(65);
    for (query, expected) in [
        (format!("from_date={}&to_date={T0}", T0 + 10), 0),
        (format!("from_date={}&to_date={}", i64::MIN, i64::MAX), 1),
        (format!("to_date={}", i64::MIN), 0),
        (format!("from_date={}", i64::MAX), 0),
        (format!("app_id={long_app}"), 0),
        ("app_id=client%07".to_owned(), 0),
        (format!("categories={long_category}"), 0),
        (format!("categories={long_category},+DRINK+"), 1),
        ("search_query=tea%00".to_owned(), 0),
        ("search_query=TEA".to_owned(), 1),
    ] {
        let reply = api.get(&alice(), &format!("{MEMORIES}?{query}")).await;
        assert_eq!(total(reply), expected, "{query}");
    }
    let filter = "/api/v1/memories/filter";
    for (body, expected) in [
        (json!({"from_date": T0 + 10, "to_date": T0}), 0),
        (json!({"from_date": i64::MAX, "to_date": i64::MAX}), 0),
        (json!({"from_date": 0.0, "to_date": 4_102_444_800.0_f64}), 1),
        (json!({"app_ids": [long_app]}), 0),
        (json!({"category_ids": [long_category]}), 0),
        (json!({"categories": [" Drink ", ""]}), 1),
    ] {
        let reply = api.post(&alice(), filter, &body).await;
        assert_eq!(total(reply), expected, "{body}");
    }
}

#[test]
fn the_document_states_the_limits_the_api_enforces() {
    let doc = document();
    let limits = Limits::default();
    let schemas = &doc["components"]["schemas"];
    let param = |path: &str, method: &str, name: &str| {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no {name}"))["schema"]
            .clone()
    };
    let size = param(MEMORIES, "get", "size");
    assert_eq!(
        (size["minimum"].clone(), size["maximum"].clone()),
        (json!(1), json!(limits.max_page_size))
    );
    assert_eq!(param(MEMORIES, "get", "page")["minimum"], 1);
    assert_eq!(
        param(MEMORIES, "get", "search_query")["maxLength"],
        limits.max_query_bytes
    );
    assert!(param(MEMORIES, "get", "categories")["pattern"].is_string());
    let related = param("/api/v1/memories/{id}/related", "get", "size");
    assert_eq!(related["maximum"], limits.max_search_limit);
    let page_size = param("/api/v1/memories/{id}/access-log", "get", "page_size");
    assert_eq!(page_size["maximum"], limits.max_page_size);
    let id = param("/api/v1/memories/{id}", "get", "id");
    assert!(id["pattern"].as_str().unwrap().contains("-7"));

    let text = &schemas["CreateMemoryRequest"]["properties"]["text"];
    assert_eq!(text["maxLength"], limits.max_text_bytes);
    assert!(text["pattern"].is_string());
    let categories = &schemas["CreateMemoryRequest"]["properties"]["categories"];
    assert_eq!(categories["maxItems"], limits.max_categories);
    assert_eq!(categories["items"]["maxLength"], limits.max_category_chars);
    let content = &schemas["UpdateMemoryRequest"]["properties"]["memory_content"];
    assert_eq!(content["maxLength"], limits.max_text_bytes);
    assert_eq!(
        schemas["MemoryIdsRequest"]["properties"]["memory_ids"]["maxItems"],
        limits.max_batch
    );
    let filter = &schemas["FilterMemoriesRequest"]["properties"];
    assert_eq!(filter["size"]["maximum"], limits.max_page_size);
    assert_eq!(filter["app_ids"]["maxItems"], 1);
    assert_eq!(filter["categories"]["maxItems"], limits.max_categories);
    assert_eq!(filter["search_query"]["maxLength"], limits.max_query_bytes);
}

#[tokio::test]
async fn malformed_fields_are_422s_and_nothing_is_written() {
    let api = Api::new();
    let cases = [
        (MEMORIES, json!({"text": 42})),
        (MEMORIES, json!({"text": "t", "metadata": [1, 2]})),
        (MEMORIES, json!({"text": "t", "categories": "work"})),
        (MEMORIES, json!({"metadata": {}})),
        (MEMORIES, json!(["text"])),
        (
            "/api/v1/memories/actions/archive",
            json!({"memory_ids": ["not-a-uuid"]}),
        ),
        (
            "/api/v1/memories/actions/archive",
            json!({"memory_ids": ["67e55044-10b1-426f-9247-bb680e5fe0c8"]}),
        ),
        ("/api/v1/memories/actions/pause", json!({})),
        ("/api/v1/memories/filter", json!({"page": -1})),
        ("/api/v1/memories/filter", json!({"show_archived": "yes"})),
    ];
    for (path, body) in cases {
        let reply = api.post(&alice(), path, &body).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    }
    // A JSON object with a repeated key is refused, not resolved to either value.
    let duplicate = Request::builder()
        .method(Method::POST)
        .uri(MEMORIES)
        .header("authorization", format!("Bearer {}", alice()))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(br#"{"text":"a","text":"b"}"#)))
        .unwrap();
    api.send(duplicate).await.assert_invalid("text");
    assert!(api.memories_of(ALICE).await.is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_nothing_is_written() {
    let api = Api::with(|rest| rest.with_max_body_bytes(1024));
    let reply = api
        .post(&alice(), MEMORIES, &json!({"text": "x".repeat(2000)}))
        .await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let fits = api
        .post(&alice(), MEMORIES, &json!({"text": "x".repeat(900)}))
        .await;
    assert_eq!(fits.status, StatusCode::CREATED);
    assert_eq!(api.memories_of(ALICE).await.len(), 1);

    let default_limit = Api::new();
    let reply = default_limit
        .post(
            &alice(),
            MEMORIES,
            &json!({"text": "x".repeat(mcp_api::http::DEFAULT_MAX_BODY_BYTES)}),
        )
        .await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(default_limit.memories_of(ALICE).await.is_empty());
}

/// Every route that reads a body, with a valid body for it.
fn body_routes(id: &str) -> Vec<(&'static RouteSpec, String, Value)> {
    routes()
        .iter()
        .filter_map(|spec| example(spec, id, id).map(|(path, body)| (spec, path, body)))
        .filter_map(|(spec, path, body)| body.map(|body| (spec, path, body)))
        .collect()
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415_on_every_body_route() {
    let api = Api::new();
    let id = id_of(&api.create(&alice(), "existing", &[]).await);
    let before = api.memories_of(ALICE).await;
    let routes = body_routes(&id);
    assert_eq!(routes.len(), 6);
    for (spec, path, body) in routes {
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut builder = Request::builder()
                .method(spec.method.clone())
                .uri(&path)
                .header("authorization", format!("Bearer {}", alice()));
            if let Some(content_type) = content_type {
                builder = builder.header(CONTENT_TYPE, content_type);
            }
            let request = builder
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let reply = api.send(request).await;
            reply.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        }
    }
    assert_eq!(api.memories_of(ALICE).await, before);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400() {
    let api = Api::new();
    for body in [
        &b"{\"text\":"[..],
        b"",
        b"text=hello",
        b"{\"text\":\"a\"} trailing",
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri(MEMORIES)
            .header("authorization", format!("Bearer {}", alice()))
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        api.send(request)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    }
    assert!(api.memories_of(ALICE).await.is_empty());
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let api = Api::new();
    for path in [
        "/api/v1/apps/",
        "/api/v1/config/",
        "/api/v1/",
        "/api/v2/memories/",
        "/",
        "/api/v1/memories//",
        "/api/v1/memories/categories/extra",
    ] {
        let reply = api.get(&alice(), path).await;
        reply.assert_error(StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn ids_that_are_not_uuidv7_are_404s() {
    let api = Api::new();
    for id in [
        "not-a-uuid",
        "67e55044-10b1-426f-9247-bb680e5fe0c8",
        "00000000-0000-0000-0000-000000000000",
    ] {
        api.get(&alice(), &memory_path(id))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
        api.get(&alice(), &format!("{}/related", memory_path(id)))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let api = Api::new();
    let cases = [
        (Method::PATCH, MEMORIES.to_owned(), "GET, POST, DELETE"),
        (
            Method::PUT,
            "/api/v1/memories".to_owned(),
            "GET, POST, DELETE",
        ),
        (Method::GET, "/api/v1/memories/filter".to_owned(), "POST"),
        (
            Method::DELETE,
            "/api/v1/memories/categories".to_owned(),
            "GET",
        ),
        (
            Method::GET,
            "/api/v1/memories/actions/archive".to_owned(),
            "POST",
        ),
        (Method::POST, "/api/v1/stats/".to_owned(), "GET"),
        (Method::DELETE, memory_path("anything"), "GET, PUT"),
        (Method::HEAD, "/api/v1/stats".to_owned(), "GET"),
    ];
    for (method, path, allow) in cases {
        let reply = api
            .send(request(method.clone(), &path, Some(&alice()), None))
            .await;
        reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(reply.headers[ALLOW], allow, "{method} {path}");
    }
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_on_every_route() {
    let api = Api::new();
    let id = id_of(&api.create(&alice(), "existing", &[]).await);
    let before = api.memories_of(ALICE).await;
    for spec in routes() {
        let (path, body) = example(spec, &id, &id).unwrap();
        let path = format!("{path}?cache_buster=1");
        let reply = api
            .send(request(
                spec.method.clone(),
                &path,
                Some(&alice()),
                body.as_ref(),
            ))
            .await;
        reply.assert_invalid("cache_buster");
    }
    assert_eq!(api.memories_of(ALICE).await, before);
}

// ----- Authentication and scopes -------------------------------------------------------------

#[tokio::test]
async fn a_read_only_token_gets_403_insufficient_scope_on_every_write_route() {
    let api = Api::new();
    let id = id_of(&api.create(&alice(), "keep me", &["c"]).await);
    let before = api.memories_of(ALICE).await;
    let read_only = token(ALICE, &format!("openid {READ}"), APP_A);
    let mut write_routes = 0;
    for spec in routes()
        .iter()
        .filter(|spec| spec.scope == RequiredScope::Write)
    {
        write_routes += 1;
        let (path, body) = example(spec, &id, &id).unwrap();
        let reply = api
            .send(request(
                spec.method.clone(),
                &path,
                Some(&read_only),
                body.as_ref(),
            ))
            .await;
        reply.assert_error(StatusCode::FORBIDDEN, "insufficient_scope");
        let challenge = reply.headers[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="insufficient_scope""#),
            "{challenge}"
        );
        assert!(
            challenge.contains(r#"scope="memories:write""#),
            "{challenge}"
        );
        assert!(challenge.contains("resource_metadata="), "{challenge}");
    }
    assert_eq!(write_routes, 5);
    assert_eq!(api.memories_of(ALICE).await, before);
    assert_eq!(api.access_count(ALICE, &id).await, 0);

    // The same token reads.
    assert_eq!(
        api.get(&read_only, &memory_path(&id)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_without_memory_scopes_gets_403_on_every_route() {
    let api = Api::new();
    let id = id_of(&api.create(&alice(), "keep me", &[]).await);
    let sign_in_only = token(ALICE, "openid email profile", APP_A);
    for spec in routes() {
        let (path, body) = example(spec, &id, &id).unwrap();
        let reply = api
            .send(request(
                spec.method.clone(),
                &path,
                Some(&sign_in_only),
                body.as_ref(),
            ))
            .await;
        reply.assert_error(StatusCode::FORBIDDEN, "insufficient_scope");
        let challenge = reply.headers[WWW_AUTHENTICATE].to_str().unwrap();
        let expected = format!(r#"scope="{}""#, spec.scope.as_str());
        assert!(challenge.contains(&expected), "{challenge}");
    }
    assert_eq!(api.access_count(ALICE, &id).await, 0);
}

#[tokio::test]
async fn requests_without_a_valid_token_never_reach_the_api() {
    let api = Api::new();
    api.create(&alice(), "secret", &[]).await;
    let missing = api.send(request(Method::GET, MEMORIES, None, None)).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing.headers.contains_key(WWW_AUTHENTICATE));
    assert_eq!(missing.json, Value::Null);

    let garbage = api
        .send(request(Method::GET, MEMORIES, Some("not.a.token"), None))
        .await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_api_without_verified_claims_answers_401_json_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("m.db"), Limits::default()).unwrap());
    let api = RestApi::new(store, resource());
    let response = api
        .oneshot(request(Method::GET, MEMORIES, Some(&alice()), None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer resource_metadata=")
    );
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "unauthorized");
}

#[tokio::test]
async fn a_verified_token_with_an_unusable_subject_is_401_invalid_token() {
    let api = Api::new();
    for subject in ["", "alice\u{7}", &"x".repeat(300)] {
        let reply = api.get(&token(subject, WRITE, APP_A), MEMORIES).await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        let challenge = reply.headers[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn a_token_whose_client_id_cannot_be_an_app_writes_nothing() {
    let api = Api::new();
    let odd_client = token(ALICE, WRITE, &"c".repeat(300));
    let reply = api.post(&odd_client, MEMORIES, &json!({"text": "t"})).await;
    reply.assert_invalid("client_id");
    assert!(api.memories_of(ALICE).await.is_empty());
}

// ----- Isolation attacks: Bob against Alice's memory -----------------------------------------

/// Alice's memory, read once by Alice (so its access log is not empty), and a snapshot of
/// all her memories.
struct Victim {
    id: String,
    before: Vec<mcp_api::Memory>,
    accesses: u64,
}

async fn victim(api: &Api) -> Victim {
    let created = api
        .post(
            &alice(),
            MEMORIES,
            &json!({"text": "Alice's secret diagnosis", "categories": ["health", "secret"], "metadata": {"doctor": "x"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = id_of(&created.json);
    api.advance_seconds(1);
    assert_eq!(
        api.get(&alice(), &memory_path(&id)).await.status,
        StatusCode::OK
    );
    Victim {
        before: api.memories_of(ALICE).await,
        accesses: api.access_count(ALICE, &id).await,
        id,
    }
}

impl Victim {
    async fn assert_untouched(&self, api: &Api) {
        assert_eq!(api.memories_of(ALICE).await, self.before);
        assert_eq!(api.access_count(ALICE, &self.id).await, self.accesses);
    }
}

#[tokio::test]
async fn attack_list_other_users_memories() {
    let api = Api::new();
    let victim = victim(&api).await;
    for query in [
        "",
        "?search_query=secret",
        &format!("?app_id={APP_A}"),
        "?categories=health",
    ] {
        let reply = api.get(&bob(), &format!("{MEMORIES}{query}")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json["items"], json!([]), "{query}");
        assert_eq!(reply.json["total"], 0, "{query}");
    }
    let filtered = api
        .post(
            &bob(),
            "/api/v1/memories/filter",
            &json!({"show_archived": true, "search_query": "secret"}),
        )
        .await;
    assert_eq!(filtered.json["total"], 0);
    victim.assert_untouched(&api).await;
}

#[tokio::test]
async fn attack_get_other_users_memory_by_id() {
    let api = Api::new();
    let victim = victim(&api).await;
    let reply = api.get(&bob(), &memory_path(&victim.id)).await;
    reply.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(!reply.json.to_string().contains("secret"));
    victim.assert_untouched(&api).await;
}

#[tokio::test]
async fn attack_update_other_users_memory() {
    let api = Api::new();
    let victim = victim(&api).await;
    let reply = api
        .put(
            &bob(),
            &memory_path(&victim.id),
            &json!({"memory_content": "overwritten by bob", "metadata": {}}),
        )
        .await;
    reply.assert_error(StatusCode::NOT_FOUND, "not_found");
    victim.assert_untouched(&api).await;
}

#[tokio::test]
async fn attack_delete_other_users_memory() {
    let api = Api::new();
    let victim = victim(&api).await;
    let own = id_of(&api.create(&bob(), "bob's own", &[]).await);
    let reply = api
        .delete(&bob(), MEMORIES, &json!({"memory_ids": [victim.id, own]}))
        .await;
    assert_eq!(reply.json, json!({"deleted": 1}));
    victim.assert_untouched(&api).await;
    assert!(api.memories_of(BOB).await.is_empty());
}

#[tokio::test]
async fn attack_archive_other_users_memory() {
    let api = Api::new();
    let victim = victim(&api).await;
    let reply = api
        .post(
            &bob(),
            "/api/v1/memories/actions/archive",
            &json!({"memory_ids": [victim.id]}),
        )
        .await;
    assert_eq!(reply.json, json!({"updated": 0}));
    victim.assert_untouched(&api).await;
}

#[tokio::test]
async fn attack_pause_other_users_memory() {
    let api = Api::new();
    let victim = victim(&api).await;
    for state in ["paused", "active"] {
        let reply = api
            .post(
                &bob(),
                "/api/v1/memories/actions/pause",
                &json!({"memory_ids": [victim.id], "state": state}),
            )
            .await;
        assert_eq!(reply.json, json!({"updated": 0}));
    }
    victim.assert_untouched(&api).await;
}

#[tokio::test]
async fn attack_read_access_log_of_other_users_memory() {
    let api = Api::new();
    let victim = victim(&api).await;
    assert_eq!(victim.accesses, 1);
    let reply = api
        .get(&bob(), &format!("{}/access-log", memory_path(&victim.id)))
        .await;
    reply.assert_error(StatusCode::NOT_FOUND, "not_found");
    victim.assert_untouched(&api).await;
}

#[tokio::test]
async fn attack_related_reveals_other_users_memory() {
    let api = Api::new();
    let victim = victim(&api).await;
    let own = id_of(
        &api.create(&bob(), "bob's health note", &["health", "secret"])
            .await,
    );
    let reply = api
        .get(&bob(), &format!("{}/related", memory_path(&victim.id)))
        .await;
    reply.assert_error(StatusCode::NOT_FOUND, "not_found");
    let related = api
        .get(&bob(), &format!("{}/related?size=50", memory_path(&own)))
        .await;
    assert_eq!(related.status, StatusCode::OK);
    assert_eq!(related.json, json!({"items": [], "total": 0}));
    victim.assert_untouched(&api).await;
}

#[tokio::test]
async fn attack_categories_reveal_other_users_categories() {
    let api = Api::new();
    let victim = victim(&api).await;
    let empty = api.get(&bob(), "/api/v1/memories/categories").await;
    assert_eq!(empty.json, json!({"categories": [], "total": 0}));
    api.create(&bob(), "bob", &["work"]).await;
    let own = api.get(&bob(), "/api/v1/memories/categories").await;
    assert_eq!(
        own.json,
        json!({"categories": [{"name": "work", "count": 1}], "total": 1})
    );
    victim.assert_untouched(&api).await;
}

#[tokio::test]
async fn attack_stats_reveal_other_users_usage() {
    let api = Api::new();
    let victim = victim(&api).await;
    let reply = api.get(&bob(), "/api/v1/stats/").await;
    assert_eq!(
        reply.json,
        json!({"total_memories": 0, "total_apps": 0, "apps": []})
    );
    victim.assert_untouched(&api).await;
}

#[tokio::test]
async fn user_id_in_body_cannot_read_or_write_another_users_memories() {
    let api = Api::new();
    let victim = victim(&api).await;
    let bobs = id_of(&api.create(&bob(), "bob's own", &[]).await);
    let filter = "/api/v1/memories/filter";
    // Every body OpenMemory's clients send with `user_id`, naming Alice: each is accepted
    // and acts on Bob's memories only.
    let created = api
        .post(
            &bob(),
            MEMORIES,
            &json!({"text": "planted", "user_id": ALICE, "infer": false, "app": "openmemory"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.json);
    assert_eq!(created.json["app_name"], APP_B);
    let planted = id_of(&created.json);

    let listed = api
        .post(
            &bob(),
            filter,
            &json!({"user_id": ALICE, "show_archived": true}),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{:#}", listed.json);
    let mut seen = contents(&listed.json);
    seen.sort_unstable();
    assert_eq!(seen, ["bob's own", "planted"]);

    let updated = api
        .put(
            &bob(),
            &memory_path(&victim.id),
            &json!({"memory_id": victim.id, "memory_content": "overwritten", "user_id": ALICE}),
        )
        .await;
    updated.assert_error(StatusCode::NOT_FOUND, "not_found");

    let ids = json!([victim.id, bobs]);
    let paused = api
        .post(
            &bob(),
            "/api/v1/memories/actions/pause",
            &json!({"memory_ids": ids, "all_for_app": true, "state": "paused", "user_id": ALICE}),
        )
        .await;
    assert_eq!(paused.json, json!({"updated": 1}), "{:#}", paused.json);
    let archived = api
        .post(
            &bob(),
            "/api/v1/memories/actions/archive",
            &json!({"memory_ids": ids, "user_id": ALICE}),
        )
        .await;
    assert_eq!(archived.json, json!({"updated": 1}), "{:#}", archived.json);
    let deleted = api
        .delete(
            &bob(),
            MEMORIES,
            &json!({"memory_ids": [victim.id, planted], "user_id": ALICE}),
        )
        .await;
    assert_eq!(deleted.json, json!({"deleted": 1}), "{:#}", deleted.json);

    // OpenMemory's other selectors are still refused, not silently ignored.
    api.post(
        &bob(),
        "/api/v1/memories/actions/pause",
        &json!({"memory_ids": [victim.id], "user_id": ALICE, "global_pause": true}),
    )
    .await
    .assert_invalid("global_pause");

    victim.assert_untouched(&api).await;
    let bob_left = api.memories_of(BOB).await;
    assert_eq!(bob_left.len(), 1);
    assert_eq!(bob_left[0].state.as_str(), "archived");
}

#[tokio::test]
async fn user_id_in_query_cannot_read_or_write_another_users_memories() {
    let api = Api::new();
    let victim = victim(&api).await;
    let user = "user_id=auth0%7Calice";
    let not_found = [
        format!("{}?{user}", memory_path(&victim.id)),
        format!("{}/access-log?{user}", memory_path(&victim.id)),
        format!("{}/related?{user}", memory_path(&victim.id)),
    ];
    for path in not_found {
        api.get(&bob(), &path)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    let list = api.get(&bob(), &format!("{MEMORIES}?{user}")).await;
    assert_eq!(list.json["total"], 0, "{:#}", list.json);
    let categories = api
        .get(&bob(), &format!("/api/v1/memories/categories?{user}"))
        .await;
    assert_eq!(categories.json["total"], 0, "{:#}", categories.json);
    let stats = api.get(&bob(), &format!("/api/v1/stats?{user}")).await;
    assert_eq!(stats.json["total_memories"], 0, "{:#}", stats.json);

    let create = api
        .post(
            &bob(),
            &format!("{MEMORIES}?{user}"),
            &json!({"text": "planted"}),
        )
        .await;
    assert_eq!(create.status, StatusCode::CREATED, "{:#}", create.json);
    victim.assert_untouched(&api).await;
    assert_eq!(api.memories_of(BOB).await.len(), 1);
    assert_eq!(api.memories_of(ALICE).await.len(), 1);
}

#[tokio::test]
async fn attack_token_with_a_swapped_subject() {
    let api = Api::new();
    let victim = victim(&api).await;
    // Bob's token with Alice's subject pasted into the payload: the signature no longer matches.
    let bob_token = bob();
    let parts: Vec<&str> = bob_token.split('.').collect();
    let forged_claims = json!({
        "iss": ISSUER, "aud": resource().resource(), "sub": ALICE, "client_id": APP_B,
        "scope": WRITE, "iat": T0, "exp": T0 + 3600,
    });
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            forged_claims.to_string()
        ),
        parts[2]
    );
    let reply = api.get(&forged, &memory_path(&victim.id)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    victim.assert_untouched(&api).await;
}

// ----- OpenAPI document ----------------------------------------------------------------------

fn document() -> Value {
    openapi_document(&resource())
}

fn method_key(method: &Method) -> String {
    method.as_str().to_ascii_lowercase()
}

#[test]
fn the_document_is_openapi_3_1_with_the_oidc_scheme_and_top_level_security() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["info"]["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(doc["servers"], json!([{"url": BASE_URL}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["oidc"],
        json!({
            "type": "openIdConnect",
            "openIdConnectUrl": format!("{ISSUER}/.well-known/openid-configuration"),
            "description": doc["components"]["securitySchemes"]["oidc"]["description"],
        })
    );
    assert_eq!(
        doc["security"],
        json!([{"oidc": ["openid", "email", "profile"]}])
    );
}

#[test]
fn the_route_table_and_the_document_match_both_ways() {
    let doc = document();
    let paths = doc["paths"].as_object().unwrap();
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| {
                    [
                        "get", "put", "post", "delete", "patch", "head", "options", "trace",
                    ]
                    .contains(&key.as_str())
                })
                .map(move |method| (path.clone(), method.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|spec| (spec.path.to_owned(), method_key(&spec.method)))
        .collect();
    assert_eq!(routed.len(), routes().len(), "duplicate route");
    assert_eq!(documented, routed);

    let mut operation_ids = BTreeSet::new();
    for spec in routes() {
        let operation = &doc["paths"][spec.path][method_key(&spec.method)];
        assert_eq!(operation["operationId"], spec.route.operation_id());
        assert!(operation_ids.insert(spec.route.operation_id()));
        assert!(operation["summary"].as_str().is_some_and(|s| !s.is_empty()));
        // The top-level requirement (the sign-in scopes) stays in force; the scope the
        // token needs is named, not required in a way that client configuration cannot meet.
        assert!(operation.get("security").is_none(), "{}", spec.path);
        assert_eq!(
            operation["x-required-scopes"],
            json!([spec.scope.as_str()]),
            "{}",
            spec.route.operation_id()
        );
        assert!(
            operation["description"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("`{}` scope", spec.scope.as_str()))),
            "{}",
            spec.route.operation_id()
        );
        let path_parameters: Vec<&Value> = operation["parameters"]
            .as_array()
            .map(|parameters| parameters.iter().filter(|p| p["in"] == "path").collect())
            .unwrap_or_default();
        if spec.path.contains("{id}") {
            assert_eq!(path_parameters.len(), 1, "{}", spec.path);
            assert_eq!(path_parameters[0]["name"], "id");
            assert_eq!(path_parameters[0]["required"], true);
        } else {
            assert!(path_parameters.is_empty(), "{}", spec.path);
        }
    }
}

#[test]
fn every_operation_documents_its_error_responses_with_the_error_schema() {
    let doc = document();
    let error_ref = json!({"$ref": "#/components/schemas/ErrorResponse"});
    for spec in routes() {
        let operation = &doc["paths"][spec.path][method_key(&spec.method)];
        let responses = operation["responses"].as_object().unwrap();
        let unauthorized = &responses["401"];
        assert!(unauthorized.get("content").is_none(), "the 401 has no body");
        assert!(unauthorized["headers"]["WWW-Authenticate"].is_object());
        let mut expected = vec!["403", "422", "500", "503"];
        if operation.get("requestBody").is_some() {
            expected.extend(["400", "413", "415"]);
        }
        if spec.path.contains("{id}") {
            expected.push("404");
        }
        for status in expected {
            let response = &responses
                .get(status)
                .unwrap_or_else(|| panic!("{} lacks {status}", spec.route.operation_id()));
            assert_eq!(response["content"]["application/json"]["schema"], error_ref);
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
            );
        }
        assert_eq!(
            responses
                .keys()
                .filter(|code| code.starts_with('2'))
                .count(),
            1,
            "{}",
            spec.route.operation_id()
        );
    }
}

#[test]
fn every_ref_in_the_document_resolves() {
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 20, "{refs:?}");
    for reference in refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external ref {reference}"));
        assert!(doc.pointer(pointer).is_some(), "unresolved {reference}");
    }
    // And nothing documented is unused.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for name in schemas.keys() {
        assert!(
            text.contains(&format!("\"#/components/schemas/{name}\"")),
            "unused schema {name}"
        );
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                refs.push(reference.clone());
            }
            map.values().for_each(|child| collect_refs(child, refs));
        }
        Value::Array(items) => items.iter().for_each(|child| collect_refs(child, refs)),
        _ => {}
    }
}

/// A request for `spec` that succeeds: `id` names an existing memory, `deletable` another.
fn example(spec: &RouteSpec, id: &str, deletable: &str) -> Option<(String, Option<Value>)> {
    let path = spec.path.replace("{id}", id);
    let body = match spec.route {
        Route::ListMemories
        | Route::GetMemory
        | Route::ListCategories
        | Route::GetAccessLog
        | Route::GetRelatedMemories
        | Route::GetStats => None,
        Route::CreateMemory => Some(json!({"text": "example", "categories": ["example"]})),
        Route::DeleteMemories => Some(json!({"memory_ids": [deletable]})),
        Route::UpdateMemory => Some(json!({"memory_content": "updated example"})),
        Route::ArchiveMemories | Route::PauseMemories => Some(json!({"memory_ids": [id]})),
        Route::FilterMemories => Some(json!({"page": 1, "size": 10})),
        _ => return None,
    };
    Some((path, body))
}

#[tokio::test]
async fn every_documented_operation_is_served_with_its_documented_success_and_schema() {
    let api = Api::new();
    let doc = document();
    let id = id_of(&api.create(&alice(), "walked", &["example"]).await);
    api.create(&alice(), "related", &["example"]).await;
    let deletable = id_of(&api.create(&alice(), "deletable", &[]).await);
    for spec in routes() {
        let (path, body) = example(spec, &id, &deletable)
            .unwrap_or_else(|| panic!("no example for {:?}", spec.route));
        let reply = api
            .send(request(
                spec.method.clone(),
                &path,
                Some(&alice()),
                body.as_ref(),
            ))
            .await;
        let operation = &doc["paths"][spec.path][method_key(&spec.method)];
        let (status, response) = operation["responses"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(code, _)| code.starts_with('2'))
            .unwrap();
        assert_eq!(reply.status.as_str(), status, "{path}: {:#}", reply.json);
        let schema = &response["content"]["application/json"]["schema"];
        assert_conforms(&doc, schema, &reply.json, spec.route.operation_id());
        if let Some(body) = &body {
            let request_schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            assert_conforms(&doc, request_schema, body, spec.route.operation_id());
        }
    }
}

#[tokio::test]
async fn error_bodies_match_the_documented_error_schema() {
    let api = Api::new();
    let doc = document();
    let schema = json!({"$ref": "#/components/schemas/ErrorResponse"});
    let read_only = token(ALICE, READ, APP_A);
    let replies: Vec<Reply> = vec![
        api.get(&alice(), "/api/v1/nope").await,
        api.get(&alice(), &memory_path("nope")).await,
        api.send(request(Method::PATCH, MEMORIES, Some(&alice()), None))
            .await,
        api.send(request(Method::POST, MEMORIES, Some(&alice()), None))
            .await,
        api.post(&alice(), MEMORIES, &json!({"text": ""})).await,
        api.post(&alice(), MEMORIES, &json!({"user_id": "x"})).await,
        api.post(&read_only, MEMORIES, &json!({"text": "x"})).await,
        api.post(&alice(), MEMORIES, &json!({"text": "x".repeat(300 * 1024)}))
            .await,
    ];
    let mut codes = BTreeSet::new();
    for reply in replies {
        assert!(!reply.status.is_success());
        assert_conforms(&doc, &schema, &reply.json, "error");
        codes.insert(reply.error().to_owned());
    }
    assert_eq!(codes.len(), 6, "{codes:?}");
}

/// Checks `value` against a JSON Schema of the document: `$ref`, `type`, `enum`, `const`,
/// `oneOf`/`anyOf`, `properties` with `required` and no undeclared properties, and `items`.
#[track_caller]
fn assert_conforms(doc: &Value, schema: &Value, value: &Value, context: &str) {
    if let Err(problem) = conforms(doc, schema, value, "$") {
        panic!("{context}: {problem}\nvalue: {value:#}\nschema: {schema:#}");
    }
}

fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if schema == &Value::Bool(true) {
        return Ok(());
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let target = doc
            .pointer(reference.trim_start_matches('#'))
            .ok_or_else(|| format!("{at}: unresolved {reference}"))?;
        return conforms(doc, target, value, at);
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(options) = schema[keyword].as_array() {
            let matching = options
                .iter()
                .filter(|option| conforms(doc, option, value, at).is_ok())
                .count();
            let ok = if keyword == "oneOf" {
                matching == 1
            } else {
                matching >= 1
            };
            if !ok {
                return Err(format!("{at}: {matching} options of {keyword} match"));
            }
        }
    }
    if let Some(expected) = schema.get("const")
        && expected != value
    {
        return Err(format!("{at}: expected const {expected}"));
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        return Err(format!("{at}: {value} not in enum"));
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.iter().any(|kind| has_type(value, kind)) {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), value.as_object())
    {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                return Err(format!("{at}: missing {name}"));
            }
        }
        for (name, child) in object {
            let Some(child_schema) = properties.get(name) else {
                return Err(format!("{at}: undeclared property {name}"));
            };
            conforms(doc, child_schema, child, &format!("{at}.{name}"))?;
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            conforms(doc, items, item, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}
