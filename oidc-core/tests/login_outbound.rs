//! The outbound client: SSRF refusals for every non-public range, DNS pinning (no
//! rebinding between check and connect), redirects, size limits, timeouts.
#![cfg(feature = "hyper-client")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod login_common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use oidc_core::outbound::{
    AddressClass, AddressPolicy, OutboundClient, OutboundConfig, OutboundError,
};

use login_common::{FixedResolver, TestServer};

fn strict(resolver: Arc<FixedResolver>) -> OutboundClient {
    OutboundClient::with_resolver(OutboundConfig::default(), resolver)
}

fn forbidden_class(result: Result<impl std::fmt::Debug, OutboundError>) -> AddressClass {
    match result {
        Err(OutboundError::Forbidden(refused)) => refused.class(),
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

async fn ok_server() -> TestServer {
    TestServer::start(|_| Response::new(Full::new(Bytes::from_static(b"ok")))).await
}

/// (address, class) for each range the default policy refuses.
const REFUSED: &[(&str, AddressClass)] = &[
    ("127.0.0.1", AddressClass::Loopback),
    ("127.1.2.3", AddressClass::Loopback),
    ("::1", AddressClass::Loopback),
    ("10.0.0.1", AddressClass::Private),
    ("172.16.5.4", AddressClass::Private),
    ("192.168.0.1", AddressClass::Private),
    ("fd00::1", AddressClass::Private),
    ("fc00::1", AddressClass::Private),
    ("169.254.169.254", AddressClass::LinkLocal),
    ("fe80::1", AddressClass::LinkLocal),
    ("fd00:ec2::254", AddressClass::LinkLocal),
    ("0.0.0.0", AddressClass::Unspecified),
    ("::", AddressClass::Unspecified),
    ("224.0.0.251", AddressClass::Multicast),
    ("ff02::1", AddressClass::Multicast),
    ("255.255.255.255", AddressClass::Broadcast),
    ("192.0.2.1", AddressClass::Documentation),
    ("198.51.100.1", AddressClass::Documentation),
    ("203.0.113.1", AddressClass::Documentation),
    ("2001:db8::1", AddressClass::Documentation),
    ("100.64.0.1", AddressClass::SharedCgnat),
    ("100.127.255.254", AddressClass::SharedCgnat),
    ("::ffff:127.0.0.1", AddressClass::Loopback),
    ("::ffff:10.0.0.1", AddressClass::Private),
    ("::ffff:169.254.169.254", AddressClass::LinkLocal),
    ("::ffff:100.64.0.1", AddressClass::SharedCgnat),
    ("240.0.0.1", AddressClass::Reserved),
];

fn literal_url(ip: &str) -> String {
    if ip.contains(':') {
        format!("https://[{ip}]/client.json")
    } else {
        format!("https://{ip}/client.json")
    }
}

#[tokio::test]
async fn every_refused_range_as_an_ip_literal() {
    let client = strict(FixedResolver::new());
    for (ip, class) in REFUSED {
        let result = client.get(&literal_url(ip), "application/json").await;
        assert_eq!(forbidden_class(result), *class, "{ip}");
    }
}

#[tokio::test]
async fn every_refused_range_behind_a_host_name() {
    let resolver = FixedResolver::new();
    for (i, (ip, _)) in REFUSED.iter().enumerate() {
        resolver.set(&format!("h{i}.attacker.example"), &[ip]);
    }
    let client = strict(resolver.clone());
    for (i, (ip, class)) in REFUSED.iter().enumerate() {
        let name = format!("h{i}.attacker.example");
        let result = client
            .get(&format!("https://{name}/c.json"), "application/json")
            .await;
        assert_eq!(forbidden_class(result), *class, "{name} -> {ip}");
        assert_eq!(resolver.lookups_of(&name), 1);
    }
}

#[tokio::test]
async fn one_private_address_in_the_answer_refuses_the_request() {
    let resolver = FixedResolver::new();
    resolver.set("mixed.example", &["93.184.215.14", "10.0.0.1"]);
    let client = strict(resolver);
    let result = client.get("https://mixed.example/", "*/*").await;
    assert_eq!(forbidden_class(result), AddressClass::Private);
}

#[tokio::test]
async fn the_system_resolver_answer_is_vetted_too() {
    // `localhost` resolves (through the operating system) to loopback addresses.
    let client = OutboundClient::new(OutboundConfig::default());
    let result = client.get("https://localhost/", "*/*").await;
    assert_eq!(forbidden_class(result), AddressClass::Loopback);
}

#[tokio::test]
async fn dns_rebinding_cannot_reach_the_loopback_address() {
    // The policy allows private networks but not loopback. The first answer is private
    // (passes the check, and keeps the test off the internet), every later answer is
    // loopback. A client that checks with one lookup and connects with another would
    // reach the server.
    let server = ok_server().await;
    let resolver = FixedResolver::new();
    resolver.set_sequence("localhost", &[&["10.255.255.1"], &["127.0.0.1"]]);
    let client = OutboundClient::with_resolver(
        OutboundConfig::default()
            .insecure_allow_http_to_loopback()
            .with_address_policy(AddressPolicy::public_only().insecure_allow_private_networks())
            .timeout(Duration::from_millis(1500)),
        resolver.clone(),
    );
    let url = format!("http://localhost:{}/", server.addr.port());
    let result = client.get(&url, "*/*").await;
    assert!(
        matches!(
            result,
            Err(OutboundError::Timeout | OutboundError::Transport(_))
        ),
        "{result:?}"
    );
    assert_eq!(resolver.lookups_of("localhost"), 1, "exactly one lookup");
    assert_eq!(
        server.connections.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(server.hits(), 0, "the rebound address was never contacted");

    // The same answers through the default policy: the loopback answer is never used,
    // and a direct loopback answer is refused outright.
    let resolver = FixedResolver::new();
    resolver.set_sequence("localhost", &[&["127.0.0.1"]]);
    let strict = OutboundClient::with_resolver(
        OutboundConfig::default().insecure_allow_http_to_loopback(),
        resolver,
    );
    assert_eq!(
        forbidden_class(strict.get(&url, "*/*").await),
        AddressClass::Loopback
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn connection_goes_to_the_vetted_address() {
    // The first answer is where the server is; a second lookup would answer an address
    // where nothing listens. Success proves the connection used the vetted answer.
    let server = ok_server().await;
    let resolver = FixedResolver::new();
    resolver.set_sequence("localhost", &[&["127.0.0.1"], &["127.0.0.2"]]);
    let client = OutboundClient::with_resolver(
        OutboundConfig::default()
            .insecure_allow_http_to_loopback()
            .with_address_policy(AddressPolicy::public_only().insecure_allow_loopback()),
        resolver.clone(),
    );
    let url = format!("http://localhost:{}/pinned", server.addr.port());
    let response = client.get(&url, "*/*").await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(resolver.lookups_of("localhost"), 1);
    let seen = server.last().unwrap();
    assert_eq!(seen.path, "/pinned");
    // The Host header keeps the name, not the address.
    assert_eq!(
        seen.headers["host"],
        format!("localhost:{}", server.addr.port())
    );
}

#[tokio::test]
async fn https_is_required() {
    let client = OutboundClient::new(OutboundConfig::default());
    assert_eq!(
        client.get("http://example.com/", "*/*").await.unwrap_err(),
        OutboundError::InsecureScheme
    );
    assert_eq!(
        client.get("http://127.0.0.1:9/", "*/*").await.unwrap_err(),
        OutboundError::InsecureScheme,
        "http to loopback only when allowed explicitly"
    );
    let tests = OutboundClient::new(OutboundConfig::default().insecure_allow_http_to_loopback());
    assert_eq!(
        tests.get("http://example.com/", "*/*").await.unwrap_err(),
        OutboundError::InsecureScheme,
        "never http to anything but loopback"
    );
    for bad in [
        "ftp://example.com/",
        "/relative",
        "https://user@example.com/",
        "not a url",
    ] {
        assert_eq!(
            client.get(bad, "*/*").await.unwrap_err(),
            OutboundError::InvalidUrl,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn unresolvable_names_fail_as_dns_errors() {
    let client = strict(FixedResolver::new());
    assert_eq!(
        client
            .get("https://nowhere.example/", "*/*")
            .await
            .unwrap_err(),
        OutboundError::Dns
    );
}

fn loopback_client(config: OutboundConfig) -> OutboundClient {
    OutboundClient::new(
        config
            .insecure_allow_http_to_loopback()
            .with_address_policy(AddressPolicy::public_only().insecure_allow_loopback()),
    )
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = TestServer::start(|req| {
        if req.path == "/start" {
            Response::builder()
                .status(302)
                .header("location", "/target")
                .body(Full::default())
                .unwrap()
        } else {
            Response::new(Full::new(Bytes::from_static(b"target")))
        }
    })
    .await;
    let client = loopback_client(OutboundConfig::default());
    let response = client.get(&server.url("/start"), "*/*").await.unwrap();
    assert_eq!(response.status, StatusCode::FOUND);
    assert_eq!(server.hits_on("/target"), 0);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let server =
        TestServer::start(|_| Response::new(Full::new(Bytes::from(vec![b'x'; 100 * 1024])))).await;
    let client = loopback_client(OutboundConfig::default());
    assert_eq!(
        client.get(&server.url("/big"), "*/*").await.unwrap_err(),
        OutboundError::BodyTooLarge,
        "announced by Content-Length"
    );
    let response = client
        .get_with_limit(&server.url("/big"), "*/*", 200 * 1024)
        .await
        .unwrap();
    assert_eq!(response.body.len(), 100 * 1024, "a per-request limit");

    // Chunked, no Content-Length: the limit applies while reading.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let chunk = vec![b'y'; 16 * 1024];
            let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..8 {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(&chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            let _ = stream.write_all(&out).await;
        }
    });
    let small = loopback_client(OutboundConfig::default().max_body_bytes(20 * 1024));
    assert_eq!(
        small
            .get(&format!("http://{addr}/chunked"), "*/*")
            .await
            .unwrap_err(),
        OutboundError::BodyTooLarge
    );
}

#[tokio::test]
async fn slow_servers_time_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = loopback_client(OutboundConfig::default().timeout(Duration::from_millis(300)));
    assert_eq!(
        client
            .get(&format!("http://{addr}/"), "*/*")
            .await
            .unwrap_err(),
        OutboundError::Timeout
    );
}

#[tokio::test]
async fn user_agent_and_basic_client_authentication() {
    let server = ok_server().await;
    let client = loopback_client(OutboundConfig::default().user_agent("memory-stack-test/1"));
    client
        .post_form(
            &server.url("/token"),
            &[("grant_type", "authorization_code"), ("code", "a b&c")],
            Some(("id:with colon", "p@ss word")),
        )
        .await
        .unwrap();
    let seen = server.last().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.headers["user-agent"], "memory-stack-test/1");
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        &seen.body[..],
        b"grant_type=authorization_code&code=a+b%26c"
    );
    let basic = seen.headers["authorization"].to_str().unwrap();
    let decoded = STANDARD
        .decode(basic.strip_prefix("Basic ").unwrap())
        .unwrap();
    // RFC 6749 §2.3.1: form-urlencoded before base64.
    assert_eq!(decoded, b"id%3Awith+colon:p%40ss+word");
}
