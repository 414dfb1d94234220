//! [`Handler`]: answers one JSON-RPC request in a given protocol era, independent of the
//! transport that carried it.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::ProtocolVersion;
use super::era::{Era, initialize_version};
use super::jsonrpc::{Reply, Request, RpcError};
use super::tools::{Tool, Toolbox};
use crate::auth::Caller;
use crate::resource::{MetadataLocation, ProtectedResource};
use crate::store::MemoryStore;

/// The `name` in `serverInfo`.
const SERVER_NAME: &str = "mcp-api";
/// The `title` in `serverInfo`.
const SERVER_TITLE: &str = "Memory";
/// How long clients may cache `tools/list` and `server/discover` (2026-07-28): the tool
/// set only changes with a deployment.
const CACHE_TTL_MS: u64 = 5 * 60 * 1000;

/// How the model should use the server (`instructions` of `initialize` and
/// `server/discover`).
const INSTRUCTIONS: &str = "Long-term memory for the signed-in user. Call search_memory \
(or search) before answering anything that may depend on what the user said in earlier \
conversations, and add_memories when the user shares a lasting fact, preference or piece \
of context. fetch returns one memory's full text. Memories are private to the user; \
deleting is permanent, so only delete when the user asks.";

/// Answers requests: `initialize`, `ping`, `tools/list`, `tools/call`, `server/discover`.
#[derive(Debug)]
pub(crate) struct Handler<S> {
    store: Arc<S>,
    toolbox: Toolbox,
}

impl<S: MemoryStore> Handler<S> {
    pub(crate) fn new(store: Arc<S>, resource: &ProtectedResource) -> Self {
        Handler {
            store,
            toolbox: Toolbox::new(resource),
        }
    }

    /// The answer to `request` from `caller` in `era`; scope refusals name the metadata at
    /// `location` (the one the transport's challenges use).
    pub(crate) async fn answer(
        &self,
        request: Request,
        caller: &Caller,
        era: Era,
        location: MetadataLocation,
    ) -> Reply {
        let Request { id, method, params } = request;
        match self.result(&method, params, caller, era, location).await {
            Ok(result) => Reply::Result {
                id,
                result: finish(result, era),
            },
            Err(error) => Reply::Error {
                id: Some(id),
                error,
            },
        }
    }

    async fn result(
        &self,
        method: &str,
        params: Map<String, Value>,
        caller: &Caller,
        era: Era,
        location: MetadataLocation,
    ) -> Result<Value, RpcError> {
        match (method, era) {
            ("initialize", Era::Legacy(_)) => Ok(initialize_result(initialize_version(&params)?)),
            ("ping", Era::Legacy(_)) => Ok(json!({})),
            ("tools/list", _) => self.tools_list(&params, era),
            ("tools/call", _) => self.tools_call(params, caller, location).await,
            ("server/discover", Era::Modern(_)) => Ok(discover_result()),
            (method, _) => Err(RpcError::method_not_found(method)),
        }
    }

    fn tools_list(&self, params: &Map<String, Value>, era: Era) -> Result<Value, RpcError> {
        if params.contains_key("cursor") {
            // The whole list fits one page, so no cursor was ever issued.
            return Err(RpcError::invalid_params("invalid cursor"));
        }
        let mut result = json!({ "tools": self.toolbox.definitions() });
        if matches!(era, Era::Modern(_)) {
            add_cache_hints(&mut result);
        }
        Ok(result)
    }

    async fn tools_call(
        &self,
        mut params: Map<String, Value>,
        caller: &Caller,
        location: MetadataLocation,
    ) -> Result<Value, RpcError> {
        let Some(Value::String(name)) = params.get("name") else {
            return Err(RpcError::invalid_params("tools/call needs a tool name"));
        };
        let Some(tool) = Tool::from_name(name) else {
            let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
            return Err(RpcError::invalid_params(format!("unknown tool: {shown}")));
        };
        // `"arguments": null` is read as no arguments, like an absent member.
        let arguments = params.remove("arguments").filter(|value| !value.is_null());
        let result = self
            .toolbox
            .call(self.store.as_ref(), caller, tool, arguments, location)
            .await;
        Ok(result.into_value())
    }
}

fn server_info() -> Value {
    json!({
        "name": SERVER_NAME,
        "title": SERVER_TITLE,
        "version": env!("CARGO_PKG_VERSION"),
    })
}

fn capabilities() -> Value {
    json!({ "tools": { "listChanged": false } })
}

fn initialize_result(version: ProtocolVersion) -> Value {
    json!({
        "protocolVersion": version.as_str(),
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

fn discover_result() -> Value {
    let mut result = json!({
        "supportedVersions": ProtocolVersion::supported_names(),
        "capabilities": capabilities(),
        "instructions": INSTRUCTIONS,
    });
    add_cache_hints(&mut result);
    result
}

/// 2026-07-28 caching hints: the answer is the same for every user.
fn add_cache_hints(result: &mut Value) {
    if let Value::Object(result) = result {
        result.insert("ttlMs".to_owned(), json!(CACHE_TTL_MS));
        result.insert("cacheScope".to_owned(), json!("public"));
    }
}

/// Modern results carry `resultType` and identify the server in `_meta`.
fn finish(mut result: Value, era: Era) -> Value {
    let (Era::Modern(_), Value::Object(object)) = (era, &mut result) else {
        return result;
    };
    object
        .entry("resultType")
        .or_insert_with(|| json!("complete"));
    let meta = object
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(
            "io.modelcontextprotocol/serverInfo".to_owned(),
            server_info(),
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_results_are_typed_and_signed() {
        let result = finish(
            json!({"_meta": {"mcp/www_authenticate": []}}),
            Era::Modern(ProtocolVersion::V2026_07_28),
        );
        assert_eq!(result["resultType"], "complete");
        assert_eq!(
            result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            SERVER_NAME
        );
        assert!(result["_meta"]["mcp/www_authenticate"].is_array());
        let legacy = finish(json!({}), Era::Legacy(ProtocolVersion::V2025_11_25));
        assert_eq!(legacy, json!({}));
    }

    #[test]
    fn initialize_needs_a_version_string() {
        let params = json!({"protocolVersion": 20250618})
            .as_object()
            .cloned()
            .unwrap();
        assert!(initialize_version(&params).is_err());
        let params = json!({"protocolVersion": "2025-06-18"})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(
            initialize_version(&params),
            Ok(ProtocolVersion::V2025_06_18)
        );
    }
}
