//! The memory MCP server. Run with: `cargo run --release --bin mcp-server -- --help`

use bins::mcp::{McpArgs, McpServer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bins::logging::init();
    let args: McpArgs = bins::config::parse_with_file(std::env::args_os().collect(), "MCP_CONFIG")?;
    let server = McpServer::bind(&args).await?;
    server.run(bins::serve::shutdown_signal()).await
}
