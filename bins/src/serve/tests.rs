//! Unit tests of `serve.rs`.

use tower::ServiceExt as _;

use super::*;

fn with_forwarded(value: &str) -> Request<()> {
    Request::builder()
        .header("x-forwarded-for", value)
        .body(())
        .unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The client address that `PeerAddress` hands to the inner service, for a request from
/// `peer` with these `X-Forwarded-For` headers.
async fn client_seen(peer: &str, trusted: &[&str], forwarded: &[&str]) -> SocketAddr {
    let inner = tower::service_fn(|request: Request<()>| async move {
        Ok::<_, Infallible>(request.extensions().get::<SocketAddr>().copied())
    });
    let service = PeerAddress {
        inner,
        peer: peer.parse().unwrap(),
        trusted_proxies: trusted.iter().map(|t| ip(t)).collect(),
    };
    let mut request = Request::builder();
    for value in forwarded {
        request = request.header("x-forwarded-for", *value);
    }
    service
        .oneshot(request.body(()).unwrap())
        .await
        .unwrap()
        .expect("the client address is always inserted")
}

#[test]
fn connections_keep_headroom_below_the_descriptor_limit() {
    assert_eq!(connections_for_descriptors(Some(256)), 192, "64 kept free");
    assert_eq!(
        connections_for_descriptors(Some(1_000)),
        800,
        "a fifth kept free"
    );
    assert_eq!(connections_for_descriptors(Some(1_048_576)), 838_861);
    assert_eq!(
        connections_for_descriptors(Some(70)),
        8,
        "never fewer than 8"
    );
    assert_eq!(connections_for_descriptors(Some(0)), 8);
    assert_eq!(connections_for_descriptors(None), MAX_CONNECTIONS_CEILING);
    assert_eq!(
        connections_for_descriptors(Some(u64::MAX)),
        MAX_CONNECTIONS_CEILING
    );
}

#[test]
fn the_busy_answer_is_well_formed() {
    let text = std::str::from_utf8(BUSY_RESPONSE).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    assert!(head.contains("\r\nRetry-After: 1\r\n"));
    assert!(head.contains("\r\nConnection: close"));
    let length = format!("\r\nContent-Length: {}\r\n", body.len());
    assert!(head.contains(&length), "{head}");
    assert!(
        !head.contains("  "),
        "continuation lines leave no spaces: {head}"
    );
}

/// [`reading_service`] served on a loopback port within `limits`: its address, the
/// sender that stops it and the serving task.
async fn start_reading_service(
    limits: ConnectionLimits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        reading_service(),
        Arc::from([]),
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop, server)
}

/// A service that reads the whole body and answers 400 if that fails, as the real
/// services do.
fn reading_service() -> impl Service<
    Request<TimedBody>,
    Response = Response<http_body_util::Full<Bytes>>,
    Error = Infallible,
    Future = impl Future + Send,
> + Clone {
    tower::service_fn(|request: Request<TimedBody>| async move {
        use http_body_util::BodyExt as _;
        let status = match request.into_body().collect().await {
            Ok(_) => StatusCode::OK,
            Err(_) => StatusCode::BAD_REQUEST,
        };
        let mut response = Response::new(http_body_util::Full::new(Bytes::new()));
        *response.status_mut() = status;
        Ok::<_, Infallible>(response)
    })
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_a_prompt_one_is_served() {
    let mut limits = ConnectionLimits::from_descriptor_limit();
    limits.body_timeout = Duration::from_millis(300);
    let (addr, stop, server) = start_reading_service(limits).await;
    let exchange = |request: &'static str| async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection");
        String::from_utf8_lossy(&answer).into_owned()
    };
    let stalled = exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc").await;
    assert!(stalled.starts_with("HTTP/1.1 408 "), "{stalled}");
    assert!(
        stalled.to_ascii_lowercase().contains("connection: close"),
        "{stalled}"
    );
    let prompt =
        exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
            .await;
    assert!(prompt.starts_with("HTTP/1.1 200 "), "{prompt}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let mut limits = ConnectionLimits::from_descriptor_limit();
    limits.idle_timeout = Duration::from_millis(300);
    let (addr, stop, server) = start_reading_service(limits).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, http_body_util::Empty<Bytes>>(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = Request::get(format!("http://{addr}/"))
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2);
    drop(response);
    // The server sends GOAWAY once the connection has been idle; the client's
    // connection then ends.
    tokio::time::timeout(Duration::from_secs(20), connection)
        .await
        .expect("the idle connection is closed")
        .unwrap()
        .unwrap();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn the_last_forwarded_hop_is_the_client() {
    // The proxy appends the address it saw; earlier entries are the client's to invent.
    assert_eq!(
        forwarded_client(&with_forwarded("1.2.3.4, 10.0.0.7"), &[]),
        "10.0.0.7".parse().ok()
    );
    assert_eq!(
        forwarded_client(&with_forwarded("2001:db8::1"), &[]),
        "2001:db8::1".parse().ok()
    );
    assert_eq!(forwarded_client(&with_forwarded("garbage"), &[]), None);
    assert_eq!(forwarded_client(&Request::new(()), &[]), None);
}

#[tokio::test]
async fn attack_x_forwarded_for_from_untrusted_peer_is_ignored() {
    let peer = "203.0.113.9:40000";
    let spoofed = ["198.51.100.1"];
    assert_eq!(
        client_seen(peer, &[], &spoofed).await,
        peer.parse().unwrap()
    );
    // Trusting some other proxy does not make this peer's header believable.
    assert_eq!(
        client_seen(peer, &["10.0.0.1"], &spoofed).await,
        peer.parse().unwrap()
    );
}

#[tokio::test]
async fn attack_client_prepended_forwarded_entries_are_not_the_client() {
    let proxy = "10.0.0.1:50000";
    let real = SocketAddr::new(ip("203.0.113.9"), 0);
    // The client sent `X-Forwarded-For: 198.51.100.1, 10.0.0.2` itself; the proxy appended
    // the address it saw. Neither invented entry may be taken, not even one that names a
    // trusted proxy.
    assert_eq!(
        client_seen(
            proxy,
            &["10.0.0.1", "10.0.0.2"],
            &["198.51.100.1, 10.0.0.2, 203.0.113.9"]
        )
        .await,
        real
    );
    // Two chained trusted proxies: the rightmost entry is the first proxy, skipped.
    assert_eq!(
        client_seen(
            proxy,
            &["10.0.0.1", "10.0.0.2"],
            &["198.51.100.1, 203.0.113.9", "10.0.0.2"]
        )
        .await,
        real
    );
    // An unreadable entry where the client should be: the proxy itself is the client.
    assert_eq!(
        client_seen(proxy, &["10.0.0.1"], &["203.0.113.9, garbage"]).await,
        proxy.parse().unwrap()
    );
}

#[tokio::test]
async fn ipv4_mapped_peer_matches_an_ipv4_trusted_proxy() {
    // A dual-stack listener reports an IPv4 proxy as ::ffff:10.0.0.1.
    let mapped = "[::ffff:10.0.0.1]:50000";
    assert_eq!(
        client_seen(mapped, &["10.0.0.1"], &["203.0.113.9"]).await,
        SocketAddr::new(ip("203.0.113.9"), 0)
    );
    // And the other way round, with a mapped forwarded entry of a trusted proxy.
    assert_eq!(
        client_seen(
            "10.0.0.1:50000",
            &["::ffff:10.0.0.1", "10.0.0.2"],
            &["203.0.113.9, ::ffff:10.0.0.2"]
        )
        .await,
        SocketAddr::new(ip("203.0.113.9"), 0)
    );
}
