//! Shared code of the runnable examples (in `examples/`), kept here so tests can drive it.
//!
//! - `protected_service`: a plain hyper service behind `jwks_verify::BearerAuthLayer` that
//!   answers with the verified subject.
//! - `axum_service`: the same layer in front of an axum router.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use jwks_verify::{BearerAuthLayer, Challenge, StandardClaims, Verified, Verifier};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// Answers `hello <sub>` for a request that passed the bearer layer.
pub async fn hello<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    let subject = request
        .extensions()
        .get::<Verified<StandardClaims>>()
        .and_then(|verified| verified.sub.clone())
        .unwrap_or_default();
    Ok(Response::new(Full::from(format!("hello {subject}\n"))))
}

/// Serves [`hello`] behind the bearer layer on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, verifier: Verifier) -> std::io::Result<()> {
    let service = ServiceBuilder::new()
        .layer(
            BearerAuthLayer::<StandardClaims>::new(verifier)
                .challenge(Challenge::new().realm("example")),
        )
        .service_fn(hello);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            // A client that hangs up mid-request is not an error worth reporting here.
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The axum flavour: a router whose one route reads the verified claims with axum's
/// `Extension` extractor.
pub fn axum_app(verifier: Verifier) -> axum::Router {
    async fn whoami(
        axum::Extension(verified): axum::Extension<Verified<StandardClaims>>,
    ) -> String {
        format!("hello {}\n", verified.sub.clone().unwrap_or_default())
    }
    axum::Router::new()
        .route("/", axum::routing::get(whoami))
        .layer(BearerAuthLayer::<StandardClaims>::new(verifier))
}

/// `--name value` command-line flags, for examples without a CLI framework.
pub fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}
