//! The MCP server: JSON-RPC 2.0, the memory tools, and every MCP HTTP transport, as one
//! tower service, [`McpService`].
//!
//! # Paths and eras
//!
//! The service sits behind `jwks_verify::BearerAuthLayer<AccessClaims>`: every request
//! carries a verified access token, and its `sub` owns every memory a tool touches.
//!
//! - **`POST /mcp`** serves two eras on one endpoint ("dual-era"):
//!   - *2026-07-28 (modern, stateless)*: a request whose `params._meta` carries
//!     `io.modelcontextprotocol/protocolVersion`, or whose `MCP-Protocol-Version` header
//!     names 2026-07-28. It must also carry `clientCapabilities` (else `400`/`-32602`),
//!     the `MCP-Protocol-Version` and `Mcp-Method` headers, and for `tools/call` the
//!     `Mcp-Name` header, all equal to the body (else `400`/`-32020`); an unknown version
//!     is `400`/`-32022` with `data.supported`; an unknown method `404`/`-32601`. Methods:
//!     `server/discover`, `tools/list`, `tools/call`. Results carry
//!     `resultType: "complete"` and `_meta["io.modelcontextprotocol/serverInfo"]`;
//!     `server/discover` and `tools/list` carry `ttlMs`/`cacheScope: "public"`.
//!     `Mcp-Session-Id` is ignored and never minted.
//!   - *2025-03-26, 2025-06-18, 2025-11-25 (Streamable HTTP)*: everything else. The
//!     `MCP-Protocol-Version` header, if present, must name one of them (else `400`);
//!     if absent, the session's negotiated version, or 2025-03-26, applies. Methods:
//!     `initialize`, `ping`, `tools/list`, `tools/call`.
//! - **`GET /mcp`** answers `405` (`Allow: POST, DELETE`, or `POST` for 2026-07-28): this
//!   server never sends server-initiated messages, so there is no stream to offer.
//! - **`DELETE /mcp`** with `Mcp-Session-Id` ends that session (`204`); `405` for 2026-07-28.
//! - **`GET /mcp/sse`** and **`POST /mcp/sse/messages?session_id=…`** (or `sessionId=`)
//!   are the deprecated 2024-11-05 HTTP+SSE transport: the stream's first event is
//!   `event: endpoint` with data `/mcp/sse/messages?session_id=<id>`; each POST is answered
//!   `202` and its response sent as `event: message` on the stream; `: ping` comments keep
//!   the stream alive ([`McpConfig::sse_keep_alive`]). `POST /mcp/messages`, the path
//!   earlier versions announced, is served the same way. The whole transport, and the
//!   copy of the RFC 9728 metadata its challenges point at, lie under `/mcp/sse` (see
//!   [`crate::resource`]), so a proxy that only lets `/mcp/sse` through passes it.
//!
//! `initialize` echoes the client's version when it is 2024-11-05 to 2025-11-25 and
//! otherwise answers 2025-11-25; `notifications/*` and client responses are acknowledged
//! with `202`. JSON-RPC batches are refused with `-32600`.
//!
//! # Answers: JSON or SSE
//!
//! A request is answered with `application/json` or with a `text/event-stream` holding
//! the response as its one `message` event and then ending, whichever the `Accept`
//! header allows, [`McpConfig::response_format`] deciding when both are (default JSON).
//! Streams for 2025-11-25 start with a priming event (an `id` and empty data); earlier
//! clients cannot parse one and 2026-07-28 dropped resumption. Resumption itself
//! (`GET` with `Last-Event-ID`) is not offered: every stream ends with its response.
//!
//! # Sessions
//!
//! `initialize` mints an `Mcp-Session-Id` (160 random bits) bound to the token's subject.
//! A request naming a session that is unknown, expired, deleted, or **another subject's**
//! gets `404`, without revealing which. Requests without the header are served
//! statelessly (the specification lets servers not require sessions): a session only
//! remembers the negotiated version, never authenticates — every request is checked on
//! its own token and scopes. Legacy SSE streams are sessions of the same table, bound
//! the same way, and forgotten when the client disconnects. Limits:
//! [`McpConfig::max_sessions`] in total (when full: expired sessions go first, then the
//! least recently used Streamable HTTP sessions; a table full of live legacy streams
//! answers `503`), [`McpConfig::max_sessions_per_subject`] Streamable HTTP sessions per
//! subject (its least recently used one is closed), and
//! [`McpConfig::session_idle_timeout`]. Legacy streams each hold a connection, so they are
//! refused instead of making room: beyond [`McpConfig::max_sse_streams_per_subject`] with
//! `429`, beyond [`McpConfig::max_sse_streams`] with `503`, both with `Retry-After`.
//!
//! Where sessions live is the [`SessionBackend`]: in the process (the default; a load
//! balancer must then route each client to one replica), or with feature `postgres` in
//! PostgreSQL (`PostgresSessions`), where every replica serves every session with the same
//! rules and answers, the limits count all replicas together, and a legacy `POST` landing
//! on a replica that does not hold the stream is answered there and its response relayed
//! to the stream's replica. If the shared directory cannot be reached, requests that name
//! a session get `503` with `Retry-After`.
//!
//! # Errors
//!
//! | Situation | HTTP | JSON-RPC |
//! |---|---|---|
//! | `Origin` present and not allowed | 403 | `-32600`, no id |
//! | no verified claims | 401 + `WWW-Authenticate` | — |
//! | body over [`McpConfig::max_body_bytes`] | 413 | `-32600`, no id |
//! | `Content-Type` not JSON / `Accept` allows neither format | 415 / 406 | `-32600` |
//! | not JSON / not a JSON-RPC message (or a batch) | 400 | `-32700` / `-32600` |
//! | unknown method | 200 (legacy), 404 (modern) | `-32601` |
//! | malformed params, unknown tool | 200 (legacy), 400 (modern) | `-32602` |
//! | unknown session / another subject's session | 404 | `-32600`, no id |
//! | session table full of live legacy streams, or every allowed SSE stream open | 503 + `Retry-After` | `-32603` |
//! | PostgreSQL session directory unreachable | 503 + `Retry-After` | `-32603` |
//! | the subject holds [`McpConfig::max_sse_streams_per_subject`] streams | 429 + `Retry-After` | `-32603` |
//! | bad tool arguments, missing scope, memory not found, store failure | 200 | result with `isError: true` |
//!
//! A missing scope is a tool result with `isError: true` and
//! `_meta["mcp/www_authenticate"]` holding an `insufficient_scope` challenge for the
//! needed scope (`memories:read` or `memories:write`), as OpenAI's connector examples
//! do. `tools/list` lists every tool regardless of scope (it is the same for everyone).
//!
//! # Tools
//!
//! `search` and `fetch` follow ChatGPT's connector contract; `add_memories`,
//! `search_memory`, `list_memories`, `delete_memories` and `delete_all_memories` follow
//! OpenMemory. Every tool has a `title`, a strict `inputSchema`
//! (`additionalProperties: false`), an `outputSchema`, and annotations; results carry
//! `structuredContent` and the same JSON as their one text block. Arguments and results
//! are typed structs, and both schemas are derived from them with schemars (JSON Schema
//! 2020-12, inline), as the REST API's OpenAPI schemas are. Times are Unix seconds, as in
//! the REST API (`created_at`, `updated_at`).
//!
//! # Layers
//!
//! A request goes down, never back up: [`McpService`] (the `Origin` check, once per
//! request, and the caller's claims) → the transport (`streamable.rs` for `/mcp`,
//! `legacy.rs` for `/mcp/sse…`: HTTP method, media types, body, JSON-RPC parsing) →
//! the transport settles the request's era (`era.rs`) and session (`session.rs`) once →
//! one call to the handler (`handler.rs`, then `tools.rs` for `tools/call`) → the
//! transport renders the reply (`responses.rs`, `sse.rs`). The state every request shares
//! (`state.rs`) is owned by the service and passed down.

mod config;
mod directory;
mod era;
mod handler;
mod jsonrpc;
mod legacy;
mod responses;
mod service;
mod session;
mod sse;
mod state;
mod streamable;
mod tools;
mod version;

pub use config::{McpConfig, ResponseFormat};
pub use directory::SessionBackend;
pub use service::{McpService, ResponseFuture};
#[cfg(feature = "postgres")]
pub use session::postgres::{
    MIGRATION_LOCK, OPEN_LOCK, PostgresSessions, PostgresSessionsBuilder, PostgresSessionsError,
};
pub use version::ProtocolVersion;

/// The Streamable HTTP endpoint (and the 2026-07-28 stateless endpoint).
pub const MCP_PATH: &str = "/mcp";
/// The legacy HTTP+SSE stream (2024-11-05), opened with `GET`.
pub const SSE_PATH: &str = "/mcp/sse";
/// The legacy HTTP+SSE message endpoint announced in the `endpoint` event. It lies under
/// [`SSE_PATH`], so a proxy that lets only `/mcp/sse` and its sub-paths through passes the
/// whole transport.
pub const MESSAGES_PATH: &str = "/mcp/sse/messages";
/// The message endpoint that earlier versions announced; still served, exactly like
/// [`MESSAGES_PATH`], for clients that kept it.
pub const MESSAGES_ALIAS_PATH: &str = "/mcp/messages";
