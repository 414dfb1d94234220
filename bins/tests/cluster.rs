//! Scale-out: two `oidc-server` and two `mcp-server` replicas on one PostgreSQL, behind
//! Debian's HAProxy (round robin per request, no stickiness). See
//! [`e2e_support::cluster`] for how the cluster is started.
//!
//! | Test | What it shows |
//! |---|---|
//! | `end_to_end_suites_pass_through_the_load_balancer` | openid-client, jose, the MCP Python SDK (Streamable HTTP and legacy SSE), the MCP TypeScript SDK, Chromium's login, revocation and the memory page in Chromium, unchanged, with every replica serving |
//! | `one_code_redeemed_by_20_racers_on_both_replicas_yields_one_token` | a code is redeemed once across replicas, and the replay revokes the grant |
//! | `one_refresh_token_rotated_by_20_racers_on_both_replicas_has_one_winner` | refresh rotation is atomic across replicas, and reuse revokes the family |
//! | `kill_9_of_a_replica_of_each_server_loses_no_acknowledged_write` | writes through a replica killed mid-load are all there exactly once; clients go on through the other one; the killed one rejoins |
//! | `postgres_restart_gives_503_with_retry_after_and_recovers` | while PostgreSQL is down the servers answer `503` with `Retry-After`, and serve again by themselves once it is back |
//!
//! The tests run one at a time: each starts its own cluster (and PostgreSQL server).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

mod common;
#[allow(dead_code)]
mod e2e_support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::oauth::{Answer, CodeRequest, authorization_code, post_form, send};
use e2e_support::suites;
use e2e_support::{Cluster, PASSWORD, USERNAME, screenshot_dir};

/// One cluster at a time: each is two PostgreSQL-backed replicas of each server.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn end_to_end_suites_pass_through_the_load_balancer() {
    let _one = one_at_a_time();
    let other_resource = format!("http://127.0.0.1:{}/other", common::free_port());
    let cluster = Cluster::start_with(&[("OIDC_RESOURCES", &other_resource)]);
    let before = cluster.server_stats();
    suites::openid_client_relying_party(&cluster);
    suites::jose_verifies_tokens_and_mcp_refuses_forgeries(&cluster, &other_resource);
    suites::python_mcp_sdk(&cluster);
    suites::typescript_mcp_sdk(&cluster);
    let shots = screenshot_dir().join("cluster");
    std::fs::create_dir_all(&shots).unwrap();
    suites::chromium_signs_in_and_consents(&cluster, &shots);
    suites::revocation_reaches_mcp_server(&cluster);
    suites::memory_page_in_chromium(&cluster, &screenshot_dir().join("cluster-memory-page"));

    // Round robin without stickiness: every replica answered a share of the flows.
    let after = cluster.server_stats();
    for server in &after {
        let earlier = before
            .iter()
            .find(|s| s.name == server.name)
            .map_or(0, |s| s.responses_2xx);
        let served = server.responses_2xx - earlier;
        println!("{}: {served} successful responses", server.name);
        assert!(
            served >= 10,
            "{} served only {served} requests: {after:?}",
            server.name
        );
    }
}

/// A public client registered through the load balancer, and a signed-in user's code.
struct App {
    issuer: String,
    client_id: String,
}

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const SCOPE: &str = "openid offline_access memories:read memories:write";

impl App {
    async fn register(cluster: &Cluster) -> App {
        let answer = send(
            "POST",
            &format!("{}/register", cluster.issuer),
            &[("content-type", "application/json")],
            &json!({
                "client_name": "cluster test",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            })
            .to_string(),
        )
        .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        App {
            issuer: cluster.issuer.clone(),
            client_id: answer.json()["client_id"].as_str().unwrap().to_owned(),
        }
    }

    /// A code and its verifier, the flow's requests spread over both replicas.
    async fn code(&self) -> common::oauth::Authorization {
        authorization_code(&CodeRequest {
            base: &self.issuer,
            client_id: &self.client_id,
            redirect_uri: REDIRECT_URI,
            scope: SCOPE,
            resource: None,
            username: USERNAME,
            password: PASSWORD,
        })
        .await
    }

    /// Redeems a code at `token_endpoint`.
    async fn redeem(
        &self,
        token_endpoint: &str,
        authorization: &common::oauth::Authorization,
    ) -> Answer {
        post_form(
            token_endpoint,
            &[],
            &[
                ("grant_type", "authorization_code"),
                ("code", &authorization.code),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", &self.client_id),
                ("code_verifier", authorization.verifier.secret()),
            ],
        )
        .await
    }

    /// Uses a refresh token at `token_endpoint`.
    async fn refresh(&self, token_endpoint: &str, refresh_token: &str) -> Answer {
        post_form(
            token_endpoint,
            &[],
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &self.client_id),
            ],
        )
        .await
    }

    /// Fresh tokens through the load balancer.
    async fn tokens(&self) -> Value {
        let authorization = self.code().await;
        let answer = self
            .redeem(&format!("{}/token", self.issuer), &authorization)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    }
}

/// The token endpoints of both replicas, bypassing the load balancer, so racers are split
/// evenly between them.
fn token_endpoints(cluster: &Cluster) -> [String; 2] {
    [0, 1].map(|i| format!("http://127.0.0.1:{}/token", cluster.oidc[i].port))
}

/// The races and the load fire hundreds of requests from one address and one user: the
/// rate limits are not what they measure.
const RACES: &[(&str, &str)] = &[("OIDC_RATE_LIMITS", "off"), ("MCP_RATE_LIMIT", "0")];

/// Rounds of each race: enough to catch a window between read and write.
const ROUNDS: usize = 10;
/// Racers per round.
const RACERS: usize = 20;

#[test]
fn one_code_redeemed_by_20_racers_on_both_replicas_yields_one_token() {
    let _one = one_at_a_time();
    let cluster = Cluster::start_with(RACES);
    runtime().block_on(async {
        let app = Arc::new(App::register(&cluster).await);
        let endpoints = token_endpoints(&cluster);
        for round in 0..ROUNDS {
            let authorization = Arc::new(app.code().await);
            let racers: Vec<_> = (0..RACERS)
                .map(|i| {
                    let (app, authorization) = (Arc::clone(&app), Arc::clone(&authorization));
                    let endpoint = endpoints[i % 2].clone();
                    tokio::spawn(async move { app.redeem(&endpoint, &authorization).await })
                })
                .collect();
            let mut winners = Vec::new();
            for racer in racers {
                let answer = racer.await.unwrap();
                match answer.status {
                    200 => winners.push(answer.json()),
                    400 => assert_eq!(answer.json()["error"], "invalid_grant", "{}", answer.body),
                    other => panic!("round {round}: status {other}: {}", answer.body),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            // The replays revoked the grant: the winner's refresh token is dead on both.
            let refresh_token = winners[0]["refresh_token"].as_str().unwrap();
            for endpoint in &endpoints {
                let answer = app.refresh(endpoint, refresh_token).await;
                assert_eq!(answer.status, 400, "round {round}: {}", answer.body);
                assert_eq!(answer.json()["error"], "invalid_grant");
            }
        }
    });
}

#[test]
fn one_refresh_token_rotated_by_20_racers_on_both_replicas_has_one_winner() {
    let _one = one_at_a_time();
    let cluster = Cluster::start_with(RACES);
    runtime().block_on(async {
        let app = Arc::new(App::register(&cluster).await);
        let endpoints = token_endpoints(&cluster);
        for round in 0..ROUNDS {
            let tokens = app.tokens().await;
            let refresh_token: Arc<str> = tokens["refresh_token"].as_str().unwrap().into();
            let racers: Vec<_> = (0..RACERS)
                .map(|i| {
                    let (app, token) = (Arc::clone(&app), Arc::clone(&refresh_token));
                    let endpoint = endpoints[i % 2].clone();
                    tokio::spawn(async move { app.refresh(&endpoint, &token).await })
                })
                .collect();
            let mut winners = Vec::new();
            for racer in racers {
                let answer = racer.await.unwrap();
                match answer.status {
                    200 => winners.push(answer.json()),
                    400 => assert_eq!(answer.json()["error"], "invalid_grant", "{}", answer.body),
                    other => panic!("round {round}: status {other}: {}", answer.body),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            // Reuse revoked the family, as on one node: the winner's successor is dead too.
            let successor = winners[0]["refresh_token"].as_str().unwrap();
            let answer = app.refresh(&endpoints[round % 2], successor).await;
            assert_eq!(answer.status, 400, "round {round}: {}", answer.body);
        }
    });
}

/// Writes memories with unique texts through the load balancer until told to stop; returns
/// the texts whose writes were acknowledged and how many writes failed. A failed write is
/// not retried (its outcome is unknown to the client), so nothing may appear twice.
async fn writer(
    api: String,
    token: String,
    name: String,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, usize) {
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let text = format!("{name} wrote memory number {n} during the fault test");
        let answer = send(
            "POST",
            &api,
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {token}")),
            ],
            &json!({ "text": text }).to_string(),
        )
        .await;
        if answer.status == 201 || answer.status == 200 {
            acknowledged.push(text);
        } else {
            if failed < 3 {
                println!("{name}: a write failed: {} {}", answer.status, answer.body);
            }
            failed += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (acknowledged, failed)
}

/// Runs whole sign-in flows through the load balancer until told to stop; returns how many
/// succeeded before and after `switch` was set.
async fn signer(app: Arc<App>, stop: Arc<AtomicBool>, switch: Arc<AtomicBool>) -> (u32, u32) {
    let (mut before, mut after) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let flow = tokio::spawn({
            let app = Arc::clone(&app);
            async move { app.tokens().await }
        });
        // A flow cut by the kill panics inside its task; the client starts another.
        if flow.await.is_ok() {
            if switch.load(Ordering::Relaxed) {
                after += 1;
            } else {
                before += 1;
            }
        }
    }
    (before, after)
}

#[test]
fn kill_9_of_a_replica_of_each_server_loses_no_acknowledged_write() {
    let _one = one_at_a_time();
    let mut cluster = Cluster::start_with(RACES);
    let rt = runtime();
    let api = cluster.mcp_url.replace("/mcp", "/api/v1/memories/");
    let app = Arc::new(rt.block_on(App::register(&cluster)));
    let token = rt.block_on(app.tokens())["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|i| {
            rt.spawn(writer(
                api.clone(),
                token.clone(),
                format!("writer {i}"),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let signers: Vec<_> = (0..2)
        .map(|_| {
            rt.spawn(signer(
                Arc::clone(&app),
                Arc::clone(&stop),
                Arc::clone(&killed),
            ))
        })
        .collect();

    std::thread::sleep(Duration::from_secs(3));
    cluster.mcp[0].kill();
    cluster.oidc[0].kill();
    killed.store(true, Ordering::Relaxed);
    println!("killed mcp-1 and oidc-1 with SIGKILL");
    std::thread::sleep(Duration::from_secs(5));
    cluster.mcp[0].start();
    cluster.oidc[0].start();
    cluster.wait_until_all_up();
    let rejoined = cluster.server_stats();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);

    let mut acknowledged = Vec::new();
    let mut failed = 0;
    for writer in writers {
        let (texts, failures) = rt.block_on(writer).unwrap();
        acknowledged.extend(texts);
        failed += failures;
    }
    let mut flows_after = 0;
    for signer in signers {
        let (_, after) = rt.block_on(signer).unwrap();
        flows_after += after;
    }
    println!(
        "{} writes acknowledged, {failed} failed; {flows_after} sign-ins after the kill",
        acknowledged.len()
    );
    assert!(flows_after > 0, "no sign-in succeeded after the kill");

    // Every acknowledged write is there, and nothing is there twice.
    let stored = rt.block_on(all_memory_texts(&api, &token));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for text in &stored {
        *counts.entry(text.as_str()).or_default() += 1;
    }
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "stored twice: {duplicated:?}");
    let stored: HashSet<&str> = counts.keys().copied().collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|text| !stored.contains(text.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(acknowledged.len() > 20, "too few writes to mean anything");

    // The restarted replicas serve again.
    let served: Vec<_> = rejoined
        .iter()
        .map(|s| (s.name.clone(), s.responses_2xx))
        .collect();
    rt.block_on(async {
        for _ in 0..20 {
            let _ = send(
                "GET",
                &format!("{}/.well-known/openid-configuration", cluster.issuer),
                &[],
                "",
            )
            .await;
            let _ = send(
                "GET",
                &api,
                &[("authorization", &format!("Bearer {token}"))],
                "",
            )
            .await;
        }
    });
    let now = cluster.server_stats();
    for (name, before) in served {
        let after = now.iter().find(|s| s.name == name).unwrap().responses_2xx;
        assert!(
            after > before,
            "{name} did not serve after rejoining: {now:?}"
        );
    }
}

/// Every memory text of the token's user, through the REST API.
async fn all_memory_texts(api: &str, token: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for page in 1.. {
        let answer = send(
            "GET",
            &format!("{api}?page={page}&size=100"),
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body = answer.json();
        let items = body["items"].as_array().unwrap();
        texts.extend(
            items
                .iter()
                .map(|m| m["content"].as_str().unwrap().to_owned()),
        );
        if items.len() < 100 {
            break;
        }
    }
    texts
}

#[test]
fn postgres_restart_gives_503_with_retry_after_and_recovers() {
    let _one = one_at_a_time();
    let cluster = Cluster::start();
    let rt = runtime();
    let api = cluster.mcp_url.replace("/mcp", "/api/v1/memories/");
    let app = Arc::new(rt.block_on(App::register(&cluster)));
    let tokens = rt.block_on(app.tokens());
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let write = |api: String, bearer: String| async move {
        send(
            "POST",
            &api,
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            &json!({ "text": "written while the database restarts" }).to_string(),
        )
        .await
    };

    cluster.postgres.stop();
    println!("PostgreSQL stopped");
    // Readiness reuses a store check for a second; then every replica says not ready.
    let deadline = Instant::now() + Duration::from_secs(10);
    for replica in cluster.oidc.iter().chain(&cluster.mcp) {
        while replica.status_of("/readyz") != Some(503) {
            assert!(Instant::now() < deadline, "{} stays ready", replica.name);
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(replica.status_of("/livez"), Some(200), "{}", replica.name);
    }
    rt.block_on(async {
        for replica in &cluster.mcp {
            let direct = format!("http://127.0.0.1:{}/api/v1/memories/", replica.port);
            let answer = write(direct, bearer.clone()).await;
            assert_eq!(answer.status, 503, "{}: {}", replica.name, answer.body);
            assert!(
                answer.headers.contains_key("retry-after"),
                "{}",
                replica.name
            );
            assert_eq!(replica.status_of("/readyz"), Some(503), "{}", replica.name);
            assert_eq!(replica.status_of("/livez"), Some(200), "{}", replica.name);
        }
        for (i, endpoint) in token_endpoints(&cluster).iter().enumerate() {
            let answer = app
                .refresh(endpoint, tokens["refresh_token"].as_str().unwrap())
                .await;
            assert_eq!(
                answer.status,
                503,
                "oidc-{}: {}\n{}",
                i + 1,
                answer.body,
                cluster.log_tails()
            );
            assert!(answer.headers.contains_key("retry-after"), "oidc-{}", i + 1);
        }
    });

    cluster.postgres.start_server();
    println!("PostgreSQL started again");
    let deadline = Instant::now() + Duration::from_secs(30);
    rt.block_on(async {
        loop {
            let answer = write(api.clone(), bearer.clone()).await;
            if answer.status == 201 || answer.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no recovery within 30 s: {} {}\n{}",
                answer.status,
                answer.body,
                cluster.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    cluster.wait_until_all_up();
    let refreshed = rt.block_on(app.refresh(
        &format!("{}/token", cluster.issuer),
        tokens["refresh_token"].as_str().unwrap(),
    ));
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
}
