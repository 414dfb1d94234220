//! The same bearer layer in front of an axum router: `jwks-verify` needs neither axum nor
//! hyper, and works with both.
//!
//! Run with:
//! ```text
//! cargo run -p examples --example axum_service -- \
//!     --issuer https://accounts.google.com --audience <your-client-id> [--listen 127.0.0.1:3001]
//! ```

use jwks_verify::{Policy, Verifier};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(issuer), Some(audience)) = (
        examples::flag(&args, "--issuer"),
        examples::flag(&args, "--audience"),
    ) else {
        anyhow::bail!("usage: axum_service --issuer <url> --audience <aud> [--listen <addr>]");
    };
    let listen = examples::flag(&args, "--listen").unwrap_or_else(|| "127.0.0.1:3001".to_owned());
    let verifier = Verifier::builder(Policy::new(issuer.as_str(), audience.as_str()))
        .discover()
        .build()?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, examples::axum_app(verifier)).await?;
    Ok(())
}
