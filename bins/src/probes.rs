//! `/livez` and `/readyz`, for load balancers and orchestrators, in front of a server.
//!
//! - `/livez`: `200` while the process serves requests at all. It never touches the
//!   database, so a database outage does not get every replica restarted at once.
//! - `/readyz`: `200` while the store answers and the server is not draining; else `503`
//!   with `Retry-After: 1`, so a load balancer sends requests elsewhere. The store's answer
//!   is kept for [`READY_CHECK_TTL`], so frequent health checks cost one query a second.
//!
//! Both are `GET` only, public, and say nothing but `ok`, `draining` or `unavailable`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use tower_service::Service;

/// How long a store check's answer is reused.
pub const READY_CHECK_TTL: Duration = Duration::from_secs(1);

/// Whether the store answers.
pub type ReadyCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Answers `/livez` and `/readyz`; passes everything else to the server.
pub struct Probes<S> {
    inner: S,
    state: Arc<ProbeState>,
}

struct ProbeState {
    check: ReadyCheck,
    draining: AtomicBool,
    last: Mutex<Option<(Instant, bool)>>,
}

/// Tells the probes that the server is draining: `/readyz` answers `503` from now on.
#[derive(Clone)]
pub struct Draining(Arc<ProbeState>);

impl Draining {
    /// Marks the server as draining.
    pub fn start(&self) {
        self.0.draining.store(true, Ordering::Relaxed);
    }
}

impl<S> Probes<S> {
    /// Probes in front of `inner`, ready while `check` says the store answers.
    pub fn new(inner: S, check: ReadyCheck) -> Self {
        Probes {
            inner,
            state: Arc::new(ProbeState {
                check,
                draining: AtomicBool::new(false),
                last: Mutex::new(None),
            }),
        }
    }

    /// The handle that marks the server as draining.
    pub fn draining(&self) -> Draining {
        Draining(Arc::clone(&self.state))
    }
}

impl<S: Clone> Clone for Probes<S> {
    fn clone(&self) -> Self {
        Probes {
            inner: self.inner.clone(),
            state: Arc::clone(&self.state),
        }
    }
}

impl ProbeState {
    async fn ready(&self) -> bool {
        if self.draining.load(Ordering::Relaxed) {
            return false;
        }
        let cached = *self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, ready)) = cached
            && at.elapsed() < READY_CHECK_TTL
        {
            return ready;
        }
        let ready = (self.check)().await;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), ready));
        ready
    }
}

/// The probe a request asks for, if any.
fn probe<B>(request: &Request<B>) -> Option<bool> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return None;
    }
    match request.uri().path() {
        "/livez" => Some(false),
        "/readyz" => Some(true),
        _ => None,
    }
}

fn answer(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

type ProbeFuture<B> =
    Pin<Box<dyn Future<Output = Result<Response<Either<B, Full<Bytes>>>, Infallible>> + Send>>;

impl<S, ReqBody, B> Service<Request<ReqBody>> for Probes<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: 'static,
{
    type Response = Response<Either<B, Full<Bytes>>>;
    type Error = Infallible;
    type Future = ProbeFuture<B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match probe(&request) {
            Some(false) => {
                let response = answer(StatusCode::OK, "ok");
                Box::pin(async move { Ok(response.map(Either::Right)) })
            }
            Some(true) => {
                let state = Arc::clone(&self.state);
                Box::pin(async move {
                    let response = if state.draining.load(Ordering::Relaxed) {
                        answer(StatusCode::SERVICE_UNAVAILABLE, "draining")
                    } else if state.ready().await {
                        answer(StatusCode::OK, "ok")
                    } else {
                        answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                    };
                    Ok(response.map(Either::Right))
                })
            }
            None => {
                let future = self.inner.call(request);
                Box::pin(async move {
                    let response = future.await?;
                    Ok(response.map(Either::Left))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicUsize;

    use http_body_util::BodyExt as _;

    use super::*;

    #[derive(Clone)]
    struct Teapot;

    impl Service<Request<()>> for Teapot {
        type Response = Response<Full<Bytes>>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            let mut response = Response::new(Full::new(Bytes::from_static(b"tea")));
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            std::future::ready(Ok(response))
        }
    }

    fn probes(healthy: Arc<AtomicBool>, checks: Arc<AtomicUsize>) -> Probes<Teapot> {
        Probes::new(
            Teapot,
            Arc::new(move || {
                checks.fetch_add(1, Ordering::Relaxed);
                let healthy = healthy.load(Ordering::Relaxed);
                Box::pin(async move { healthy })
            }),
        )
    }

    async fn get(probes: &mut Probes<Teapot>, path: &str) -> (StatusCode, String, bool) {
        let request = Request::get(path).body(()).unwrap();
        let response = probes.call(request).await.unwrap();
        let status = response.status();
        let retry = response.headers().contains_key(RETRY_AFTER);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), retry)
    }

    #[tokio::test]
    async fn liveness_never_asks_the_store_and_readiness_follows_it() {
        let healthy = Arc::new(AtomicBool::new(false));
        let checks = Arc::new(AtomicUsize::new(0));
        let mut probes = probes(Arc::clone(&healthy), Arc::clone(&checks));
        assert_eq!(
            get(&mut probes, "/livez").await,
            (StatusCode::OK, "ok".into(), false)
        );
        assert_eq!(checks.load(Ordering::Relaxed), 0);
        assert_eq!(
            get(&mut probes, "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into(), true)
        );
        // The answer is reused for a second: a second check does not reach the store.
        healthy.store(true, Ordering::Relaxed);
        assert_eq!(
            get(&mut probes, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(checks.load(Ordering::Relaxed), 1);
        *probes.state.last.lock().unwrap() = None;
        assert_eq!(
            get(&mut probes, "/readyz").await,
            (StatusCode::OK, "ok".into(), false)
        );
        assert_eq!(get(&mut probes, "/other").await.0, StatusCode::IM_A_TEAPOT);
    }

    #[tokio::test]
    async fn a_draining_server_is_not_ready_but_alive() {
        let mut probes = probes(
            Arc::new(AtomicBool::new(true)),
            Arc::new(AtomicUsize::new(0)),
        );
        assert_eq!(get(&mut probes, "/readyz").await.0, StatusCode::OK);
        probes.draining().start();
        assert_eq!(
            get(&mut probes, "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "draining".into(), true)
        );
        assert_eq!(get(&mut probes, "/livez").await.0, StatusCode::OK);
    }
}
