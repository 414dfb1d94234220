//! The cost of authentication: the memory server's routes with and without the bearer
//! layer, interleaved.

use benches::server::{loopback, serve};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use jwks_verify::{BearerAuthLayer, Verified};
use mcp_api::AccessClaims;
use mcp_api::http::ResponseBody;
use mcp_api::mcp::{McpConfig, McpService};
use mcp_api::rest::RestApi;
use std::convert::Infallible;
use std::sync::Arc;
use tower::{Layer, Service, ServiceExt};

use crate::{MakeRequest, Scale, World, rate};

/// Inserts already-verified claims: the same routes, without the auth layer.
#[derive(Clone)]
struct InsertClaims<S> {
    inner: S,
    claims: Verified<AccessClaims>,
}

impl<S, B> Service<Request<B>> for InsertClaims<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        request.extensions_mut().insert(self.claims.clone());
        self.inner.call(request)
    }
}

/// `/mcp` to the MCP service, everything else to the REST API.
#[derive(Clone)]
struct Routes<M, R> {
    mcp: M,
    rest: R,
}

impl<M, R, B> Service<Request<B>> for Routes<M, R>
where
    M: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    M::Future: Send,
    R: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    R::Future: Send,
    B: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path().starts_with("/mcp") {
            Box::pin(self.mcp.clone().oneshot(request))
        } else {
            Box::pin(self.rest.clone().oneshot(request))
        }
    }
}

/// Authenticated requests per second (4 clients) against the same routes without the auth
/// layer, interleaved, at the small user's memories.
pub(crate) async fn auth_overhead(world: &World, scale: Scale) {
    println!(
        "\n== authenticated requests per second over loopback (4 clients), auth layer vs none =="
    );
    let token = world.fixture.tokens[0].clone();
    let claims = world
        .verifier
        .verify::<AccessClaims>(&token)
        .await
        .expect("token");
    let mcp = McpService::new(
        Arc::clone(&world.store),
        world.resource.clone(),
        McpConfig::default(),
    );
    let rest = RestApi::new(Arc::clone(&world.store), world.resource.clone());
    let auth = BearerAuthLayer::<AccessClaims>::new(world.verifier.clone())
        .challenge(world.resource.challenge());
    let with_auth = serve(
        loopback().await,
        Routes {
            mcp: auth.layer(mcp.clone()),
            rest: auth.layer(rest.clone()),
        },
    );
    let without_auth = serve(
        loopback().await,
        Routes {
            mcp: InsertClaims {
                inner: mcp,
                claims: claims.clone(),
            },
            rest: InsertClaims {
                inner: rest,
                claims,
            },
        },
    );

    let bearer = format!("Bearer {token}");
    let rest_request: MakeRequest = {
        let bearer = bearer.clone();
        Arc::new(move |_| {
            Request::get("/api/v1/memories/?page=1&size=10")
                .header("authorization", &bearer)
                .body(Full::default())
                .expect("request")
        })
    };
    let mcp_request: MakeRequest = Arc::new(move |_| {
        let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": "weekend plans with family"}}});
        Request::post("/mcp")
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Full::new(Bytes::from(call.to_string())))
            .expect("request")
    });

    for (label, make) in [
        ("REST GET /api/v1/memories/", rest_request),
        ("MCP tools/call search", mcp_request),
    ] {
        // Interleave the two servers twice each to even out drift on a noisy machine.
        let mut with = 0.0;
        let mut without = 0.0;
        for _ in 0..2 {
            let window = scale.window / 2;
            without += rate(without_auth, 4, Arc::clone(&make), StatusCode::OK, window)
                .await
                .0;
            with += rate(with_auth, 4, Arc::clone(&make), StatusCode::OK, window)
                .await
                .0;
        }
        let overhead = (without - with) / without * 100.0;
        println!(
            "{label:<30} with auth {:>8.0}/s   without {:>8.0}/s   auth overhead {overhead:>5.1}% (target <= 10%)",
            with / 2.0,
            without / 2.0
        );
    }
    println!("token verifications: {:?}", world.verifier.metrics());
}
