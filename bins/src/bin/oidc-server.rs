//! The OpenID provider. Run with: `cargo run --release --bin oidc-server -- --help`

use std::io::BufRead as _;

use bins::oidc::{OidcArgs, OidcCommand, OidcServer};
use zeroize::Zeroizing;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bins::logging::init();
    let args: OidcArgs =
        bins::config::parse_with_file(std::env::args_os().collect(), "OIDC_CONFIG")?;
    if let Some(OidcCommand::HashPassword) = args.command {
        // Room for any sensible password, so that reading never reallocates and leaves an
        // unzeroed copy behind.
        let mut password = Zeroizing::new(String::with_capacity(1024));
        std::io::stdin().lock().read_line(&mut password)?;
        let hash = oidc_core::login::hash_password(password.trim_end_matches(['\r', '\n']))?;
        #[allow(clippy::print_stdout)]
        {
            println!("{hash}");
        }
        return Ok(());
    }
    let server = OidcServer::bind(&args).await?;
    server.run(bins::serve::shutdown_signal()).await
}
