//! The one-command stack: the OpenID provider and the memory MCP server on loopback.
//! Run with: `cargo run --release --bin stack`

use bins::stack::StackArgs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bins::logging::init();
    let args: StackArgs =
        bins::config::parse_with_file(std::env::args_os().collect(), "STACK_CONFIG")?;
    bins::stack::run(&args, bins::serve::shutdown_signal(), |banner| {
        #[allow(clippy::print_stdout)]
        {
            println!("{}", banner.text().as_str());
        }
    })
    .await?;
    #[allow(clippy::print_stdout)]
    {
        println!("Stopped.");
    }
    Ok(())
}
