//! A hyper service that only answers requests with a valid bearer token from your issuer.
//!
//! Run with:
//! ```text
//! cargo run -p examples --example protected_service -- \
//!     --issuer https://accounts.google.com --audience <your-client-id> [--listen 127.0.0.1:3000]
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/
//! ```
//! Keys come from `{issuer}/.well-known/openid-configuration` and are refreshed in the
//! background; the answer is `hello <sub>`, or a 401 with an RFC 6750 challenge.

use jwks_verify::{Policy, Verifier};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(issuer), Some(audience)) = (
        examples::flag(&args, "--issuer"),
        examples::flag(&args, "--audience"),
    ) else {
        anyhow::bail!("usage: protected_service --issuer <url> --audience <aud> [--listen <addr>]");
    };
    let listen = examples::flag(&args, "--listen").unwrap_or_else(|| "127.0.0.1:3000".to_owned());

    let verifier = Verifier::builder(Policy::new(issuer.as_str(), audience.as_str()))
        .discover()
        .build()?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{listen}/ for tokens from {issuer} (aud {audience})");
    }
    tokio::select! {
        served = examples::serve(listener, verifier) => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
