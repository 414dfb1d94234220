//! The tools: ChatGPT's `search`/`fetch` contract and OpenMemory's memory tools, over a
//! [`MemoryStore`], always scoped to the calling subject.
//!
//! Tool failures are tool results with `isError: true`, never JSON-RPC errors (2025-11-25:
//! "input validation errors are tool errors"), so the model sees them and can correct
//! itself. The one exception is an unknown tool name, a JSON-RPC `-32602`. A token without
//! the scope a tool needs gets an `isError` result whose `_meta["mcp/www_authenticate"]`
//! holds an RFC 6750 `insufficient_scope` challenge, as OpenAI's connector examples do, so
//! a client can start a step-up authorization.
//!
//! Arguments and results are typed (`tools/model.rs`); each tool's `inputSchema` and
//! `outputSchema` are derived from those types.

use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use self::model::{
    AddMemoriesArguments, DeleteAllMemoriesArguments, DeleteMemoriesArguments, Deleted,
    FetchArguments, FetchedMemory, ListMemoriesArguments, MemoryHit, MemoryList, MemoryView,
    SearchArguments, SearchMemoryArguments, SearchMemoryResults, SearchResult, SearchResults,
    input_schema, output_schema,
};
use crate::auth::{Caller, SCOPE_READ, SCOPE_WRITE};
use crate::resource::{MetadataLocation, ProtectedResource};
use crate::store::{
    Access, ErrorKind, ListQuery, MemoryId, MemoryStore, NewMemory, SearchQuery, StoreError,
};
use crate::timestamp::unix_seconds;

mod model;

/// How many results `search` returns.
const SEARCH_RESULTS: u32 = 10;
/// The longest title derived from a memory's text, in characters.
const TITLE_CHARS: usize = 80;
/// The longest argument-error message passed back, in characters.
const MAX_ERROR_CHARS: usize = 200;

/// One of the tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Search,
    Fetch,
    AddMemories,
    SearchMemory,
    ListMemories,
    DeleteMemories,
    DeleteAllMemories,
}

impl Tool {
    const ALL: [Tool; 7] = [
        Tool::Search,
        Tool::Fetch,
        Tool::AddMemories,
        Tool::SearchMemory,
        Tool::ListMemories,
        Tool::DeleteMemories,
        Tool::DeleteAllMemories,
    ];

    pub(crate) fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|tool| tool.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Tool::Search => "search",
            Tool::Fetch => "fetch",
            Tool::AddMemories => "add_memories",
            Tool::SearchMemory => "search_memory",
            Tool::ListMemories => "list_memories",
            Tool::DeleteMemories => "delete_memories",
            Tool::DeleteAllMemories => "delete_all_memories",
        }
    }

    fn needs_write(self) -> bool {
        matches!(
            self,
            Tool::AddMemories | Tool::DeleteMemories | Tool::DeleteAllMemories
        )
    }

    /// The access-log `via` of this tool.
    fn via(self) -> &'static str {
        match self {
            Tool::Search => "mcp:search",
            Tool::Fetch => "mcp:fetch",
            Tool::SearchMemory => "mcp:search_memory",
            Tool::ListMemories => "mcp:list_memories",
            Tool::AddMemories => "mcp:add_memories",
            Tool::DeleteMemories => "mcp:delete_memories",
            Tool::DeleteAllMemories => "mcp:delete_all_memories",
        }
    }

    /// The `title` and `description` of this tool.
    fn text(self) -> (&'static str, &'static str) {
        match self {
            Tool::Search => (
                "Search memories",
                "Search the user's saved memories by keywords. Returns matching memories as \
                 {id, title, url} results; call fetch with a result's id to read the whole memory.",
            ),
            Tool::Fetch => (
                "Fetch memory",
                "Retrieve the full text and metadata of one memory by the id that search returned.",
            ),
            Tool::AddMemories => (
                "Add memory",
                "Save one new memory for the user: a durable fact, preference or piece of context \
                 they shared. Call it whenever the user tells you something about themselves that \
                 is worth remembering. Returns the stored memory.",
            ),
            Tool::SearchMemory => (
                "Search memory",
                "Search the user's memories by keywords. Returns each match with its text, a \
                 snippet with the matched words in **bold** and its creation time. Call it before \
                 answering anything that may depend on what the user said earlier.",
            ),
            Tool::ListMemories => (
                "List memories",
                "List the user's memories, newest first, one page at a time.",
            ),
            Tool::DeleteMemories => (
                "Delete memories",
                "Permanently delete the given memories. Deleted memories cannot be recovered.",
            ),
            Tool::DeleteAllMemories => (
                "Delete all memories",
                "Permanently delete every memory of the user. Only call this when the user \
                 explicitly asks to forget everything.",
            ),
        }
    }

    /// The `inputSchema` and `outputSchema` of this tool, derived from its argument and
    /// result types.
    fn schemas(self) -> (Value, Value) {
        match self {
            Tool::Search => (
                input_schema::<SearchArguments>(),
                output_schema::<SearchResults>(),
            ),
            Tool::Fetch => (
                input_schema::<FetchArguments>(),
                output_schema::<FetchedMemory>(),
            ),
            Tool::AddMemories => (
                input_schema::<AddMemoriesArguments>(),
                output_schema::<MemoryView>(),
            ),
            Tool::SearchMemory => (
                input_schema::<SearchMemoryArguments>(),
                output_schema::<SearchMemoryResults>(),
            ),
            Tool::ListMemories => (
                input_schema::<ListMemoriesArguments>(),
                output_schema::<MemoryList>(),
            ),
            Tool::DeleteMemories => (
                input_schema::<DeleteMemoriesArguments>(),
                output_schema::<Deleted>(),
            ),
            Tool::DeleteAllMemories => (
                input_schema::<DeleteAllMemoriesArguments>(),
                output_schema::<Deleted>(),
            ),
        }
    }

    /// The `Tool` object of `tools/list`.
    fn definition(self) -> Value {
        let (title, description) = self.text();
        let (input, output) = self.schemas();
        let read_only = !self.needs_write();
        let destructive = matches!(self, Tool::DeleteMemories | Tool::DeleteAllMemories);
        json!({
            "name": self.name(),
            "title": title,
            "description": description,
            "inputSchema": input,
            "outputSchema": output,
            "annotations": {
                "title": title,
                "readOnlyHint": read_only,
                "destructiveHint": destructive,
                "idempotentHint": self != Tool::AddMemories,
                "openWorldHint": false,
            },
        })
    }
}

/// The outcome of a `tools/call`: a `CallToolResult`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolResult {
    text: String,
    structured: Option<Value>,
    is_error: bool,
    meta: Option<Value>,
}

impl ToolResult {
    /// A success: the structured value, and the same JSON as the one text block.
    fn success(structured: Value) -> Self {
        ToolResult {
            text: structured.to_string(),
            structured: Some(structured),
            is_error: false,
            meta: None,
        }
    }

    fn error(message: impl Into<String>) -> Self {
        ToolResult {
            text: message.into(),
            structured: None,
            is_error: true,
            meta: None,
        }
    }

    /// The `CallToolResult` object.
    pub(crate) fn into_value(self) -> Value {
        let mut result = Map::new();
        result.insert(
            "content".to_owned(),
            json!([{"type": "text", "text": self.text}]),
        );
        if let Some(structured) = self.structured {
            result.insert("structuredContent".to_owned(), structured);
        }
        result.insert("isError".to_owned(), Value::Bool(self.is_error));
        if let Some(meta) = self.meta {
            result.insert("_meta".to_owned(), meta);
        }
        Value::Object(result)
    }
}

/// Why a tool call failed; each becomes an `isError` result.
#[derive(Debug)]
enum ToolError {
    /// The arguments do not fit the input schema.
    InvalidArguments(String),
    /// No such memory for this subject (or none at all: the two are not told apart).
    NotFound,
    /// The store refused or failed.
    Store(StoreError),
}

impl From<StoreError> for ToolError {
    fn from(error: StoreError) -> Self {
        ToolError::Store(error)
    }
}

/// The tools of one service: their definitions, the base of memory URLs, and the
/// insufficient-scope challenges.
#[derive(Debug, Clone)]
pub(crate) struct Toolbox {
    definitions: Vec<Value>,
    base_url: String,
    well_known_challenges: ScopeChallenges,
    sse_challenges: ScopeChallenges,
}

/// The insufficient-scope challenges for one metadata location.
#[derive(Debug, Clone)]
struct ScopeChallenges {
    read: String,
    write: String,
}

impl ScopeChallenges {
    fn new(resource: &ProtectedResource, location: MetadataLocation) -> Self {
        ScopeChallenges {
            read: insufficient_scope_challenge(resource, location, SCOPE_READ),
            write: insufficient_scope_challenge(resource, location, SCOPE_WRITE),
        }
    }
}

impl Toolbox {
    pub(crate) fn new(resource: &ProtectedResource) -> Self {
        Toolbox {
            definitions: Tool::ALL.into_iter().map(Tool::definition).collect(),
            base_url: resource.base_url().to_owned(),
            well_known_challenges: ScopeChallenges::new(resource, MetadataLocation::WellKnown),
            sse_challenges: ScopeChallenges::new(resource, MetadataLocation::UnderSse),
        }
    }

    /// The `tools` array of `tools/list`.
    pub(crate) fn definitions(&self) -> &[Value] {
        &self.definitions
    }

    /// Runs `tool` for `caller`. `arguments` is the raw `arguments` member, if any; a
    /// missing scope is answered with a challenge naming the metadata at `location`.
    pub(crate) async fn call<S: MemoryStore>(
        &self,
        store: &S,
        caller: &Caller,
        tool: Tool,
        arguments: Option<Value>,
        location: MetadataLocation,
    ) -> ToolResult {
        if let Some(refusal) = self.check_scope(caller, tool, location) {
            return refusal;
        }
        let arguments = arguments.unwrap_or_else(|| Value::Object(Map::new()));
        match self.run(store, caller, tool, arguments).await {
            Ok(structured) => ToolResult::success(structured),
            Err(error) => error_result(tool, error),
        }
    }

    /// Reads the arguments of `tool` into their type, runs it, and writes its typed result.
    async fn run<S: MemoryStore>(
        &self,
        store: &S,
        caller: &Caller,
        tool: Tool,
        arguments: Value,
    ) -> Result<Value, ToolError> {
        Ok(match tool {
            Tool::Search => structured(
                &self
                    .search(store, caller, parse_arguments(arguments)?)
                    .await?,
            ),
            Tool::Fetch => structured(
                &self
                    .fetch(store, caller, parse_arguments(arguments)?)
                    .await?,
            ),
            Tool::AddMemories => {
                structured(&add_memories(store, caller, parse_arguments(arguments)?).await?)
            }
            Tool::SearchMemory => {
                structured(&search_memory(store, caller, parse_arguments(arguments)?).await?)
            }
            Tool::ListMemories => {
                structured(&list_memories(store, caller, parse_arguments(arguments)?).await?)
            }
            Tool::DeleteMemories => {
                structured(&delete_memories(store, caller, parse_arguments(arguments)?).await?)
            }
            Tool::DeleteAllMemories => {
                let DeleteAllMemoriesArguments {} = parse_arguments(arguments)?;
                structured(&delete_all_memories(store, caller).await?)
            }
        })
    }

    fn check_scope(
        &self,
        caller: &Caller,
        tool: Tool,
        location: MetadataLocation,
    ) -> Option<ToolResult> {
        let challenges = match location {
            MetadataLocation::UnderSse => &self.sse_challenges,
            _ => &self.well_known_challenges,
        };
        let (allowed, scope, challenge) = if tool.needs_write() {
            (caller.can_write(), SCOPE_WRITE, &challenges.write)
        } else {
            (caller.can_read(), SCOPE_READ, &challenges.read)
        };
        if allowed {
            return None;
        }
        let mut result = ToolResult::error(format!(
            "insufficient scope: {} needs an access token with the {scope} scope",
            tool.name()
        ));
        result.meta = Some(json!({"mcp/www_authenticate": [challenge]}));
        Some(result)
    }

    /// ChatGPT's `search`: `{"results": [{"id", "title", "url"}]}`.
    async fn search<S: MemoryStore>(
        &self,
        store: &S,
        caller: &Caller,
        SearchArguments { query }: SearchArguments,
    ) -> Result<SearchResults, ToolError> {
        let query = SearchQuery::new(query).with_limit(SEARCH_RESULTS);
        let access = Access::new(caller.app.as_str(), Tool::Search.via());
        let hits = store
            .search_recorded(&caller.owner, &query, &access)
            .await?;
        let results = hits
            .iter()
            .map(|hit| SearchResult {
                id: hit.memory.id.to_string(),
                title: title_of(&hit.memory.text),
                url: self.memory_url(hit.memory.id),
            })
            .collect();
        Ok(SearchResults { results })
    }

    /// ChatGPT's `fetch`: `{"id", "title", "text", "url", "metadata"}`.
    async fn fetch<S: MemoryStore>(
        &self,
        store: &S,
        caller: &Caller,
        FetchArguments { id }: FetchArguments,
    ) -> Result<FetchedMemory, ToolError> {
        let id = parse_memory_id(&id, "id")?;
        let access = Access::new(caller.app.as_str(), Tool::Fetch.via());
        let memory = store
            .get(&caller.owner, id, &access)
            .await?
            .ok_or(ToolError::NotFound)?;
        let title = title_of(&memory.text);
        let url = self.memory_url(memory.id);
        Ok(FetchedMemory::new(memory, title, url))
    }

    fn memory_url(&self, id: MemoryId) -> String {
        format!("{}/api/v1/memories/{id}", self.base_url)
    }
}

async fn add_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    arguments: AddMemoriesArguments,
) -> Result<MemoryView, ToolError> {
    let AddMemoriesArguments {
        text,
        categories,
        metadata,
    } = arguments;
    let memory = NewMemory::new(text, caller.app.as_str())
        .with_categories(categories)
        .with_metadata(metadata);
    let mut added = store.add(&caller.owner, vec![memory]).await?;
    let Some(memory) = added.pop() else {
        // The store returns one memory per input; anything else is a store bug.
        return Err(ToolError::Store(StoreError::from(ErrorKind::Backend)));
    };
    Ok(MemoryView::from(&memory))
}

/// OpenMemory's `search_memory`. The raw score is left out: it only orders one result
/// list. Weak matches are dropped by the engine's relevance floor, and an empty result
/// says so in `message`.
async fn search_memory<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    SearchMemoryArguments { query, limit }: SearchMemoryArguments,
) -> Result<SearchMemoryResults, ToolError> {
    let query = SearchQuery::new(query).with_limit(limit.unwrap_or(SEARCH_RESULTS));
    let access = Access::new(caller.app.as_str(), Tool::SearchMemory.via());
    let hits = store
        .search_recorded(&caller.owner, &query, &access)
        .await?;
    let results: Vec<MemoryHit> = hits
        .into_iter()
        .map(|hit| MemoryHit {
            id: hit.memory.id.to_string(),
            memory: hit.memory.text,
            snippet: hit.snippet,
            categories: hit.memory.categories,
            created_at: unix_seconds(hit.memory.created_at),
        })
        .collect();
    let message = results.is_empty().then(|| {
        "No memory matched this query closely enough. Nothing relevant is stored, or it is \
         worded differently: try other words."
            .to_owned()
    });
    Ok(SearchMemoryResults { results, message })
}

async fn list_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    ListMemoriesArguments { page, size }: ListMemoriesArguments,
) -> Result<MemoryList, ToolError> {
    let defaults = ListQuery::new();
    let query =
        ListQuery::new().with_page(page.unwrap_or(defaults.page), size.unwrap_or(defaults.size));
    let listed = store.list(&caller.owner, &query).await?;
    let ids: Vec<MemoryId> = listed.items.iter().map(|memory| memory.id).collect();
    record_access(store, caller, &ids, Tool::ListMemories).await?;
    Ok(MemoryList {
        items: listed.items.iter().map(MemoryView::from).collect(),
        total: listed.total,
        page: listed.page,
        size: listed.size,
        pages: listed.pages,
    })
}

async fn delete_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    DeleteMemoriesArguments { memory_ids }: DeleteMemoriesArguments,
) -> Result<Deleted, ToolError> {
    if memory_ids.is_empty() {
        return Err(ToolError::InvalidArguments(
            "memory_ids must name at least one memory".to_owned(),
        ));
    }
    let ids = memory_ids
        .iter()
        .enumerate()
        .map(|(index, id)| parse_memory_id(id, &format!("memory_ids[{index}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let deleted = store.delete(&caller.owner, &ids).await?;
    Ok(Deleted { deleted })
}

async fn delete_all_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
) -> Result<Deleted, ToolError> {
    let deleted = store.delete_all(&caller.owner).await?;
    Ok(Deleted { deleted })
}

/// Records that `tool` showed these memories to the caller.
async fn record_access<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    ids: &[MemoryId],
    tool: Tool,
) -> Result<(), ToolError> {
    if ids.is_empty() {
        return Ok(());
    }
    let access = Access::new(caller.app.as_str(), tool.via());
    store.record_access(&caller.owner, ids, &access).await?;
    Ok(())
}

/// `result` as JSON. Invariant: the result types have string keys and no floats, so
/// writing them as JSON cannot fail.
fn structured<T: Serialize>(result: &T) -> Value {
    serde_json::to_value(result).unwrap_or_default()
}

fn parse_arguments<T: DeserializeOwned>(arguments: Value) -> Result<T, ToolError> {
    if !arguments.is_object() {
        return Err(ToolError::InvalidArguments(
            "arguments must be an object".to_owned(),
        ));
    }
    serde_json::from_value(arguments)
        .map_err(|error| ToolError::InvalidArguments(printable(&error.to_string())))
}

fn parse_memory_id(text: &str, field: &str) -> Result<MemoryId, ToolError> {
    MemoryId::from_str(text).map_err(|_| {
        ToolError::InvalidArguments(format!("{field} is not a memory id (a UUID from search)"))
    })
}

fn error_result(tool: Tool, error: ToolError) -> ToolResult {
    match error {
        ToolError::InvalidArguments(message) => {
            ToolResult::error(format!("invalid arguments: {message}"))
        }
        ToolError::NotFound => ToolResult::error("memory not found"),
        ToolError::Store(error) => store_error_result(tool, &error),
    }
}

fn store_error_result(tool: Tool, error: &StoreError) -> ToolResult {
    match error.kind() {
        // The store's message names the field and never echoes the value.
        ErrorKind::InvalidInput { .. } | ErrorKind::QuotaExceeded { .. } => {
            ToolResult::error(error.to_string())
        }
        ErrorKind::Busy => {
            tracing::warn!(tool = tool.name(), "memory store busy");
            ToolResult::error("the memory store is busy; try again shortly")
        }
        // The database is unreachable for now (PostgreSQL restarting or failing over);
        // the store reconnects by itself.
        ErrorKind::Unavailable => {
            tracing::warn!(tool = tool.name(), error = %error, "memory store unavailable");
            ToolResult::error("the memory store is unavailable; try again shortly")
        }
        _ => {
            let source = std::error::Error::source(error).map(ToString::to_string);
            tracing::error!(tool = tool.name(), error = %error, source = ?source, "memory store failed");
            ToolResult::error("the memory store failed; try again later")
        }
    }
}

/// A short title: the first non-empty line, whitespace collapsed, at most
/// [`TITLE_CHARS`] characters.
fn title_of(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default();
    let collapsed = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "Untitled memory".to_owned();
    }
    if collapsed.chars().count() <= TITLE_CHARS {
        return collapsed;
    }
    let mut title: String = collapsed.chars().take(TITLE_CHARS - 1).collect();
    title.push('…');
    title
}

/// A message without control characters, cut to [`MAX_ERROR_CHARS`].
fn printable(message: &str) -> String {
    message
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_CHARS)
        .collect()
}

/// `Bearer …, scope="<scope>", error="insufficient_scope"` for this resource, naming the
/// metadata at `location`.
fn insufficient_scope_challenge(
    resource: &ProtectedResource,
    location: MetadataLocation,
    scope: &str,
) -> String {
    let header = resource
        .challenge_at(location)
        .insufficient_scope_header(scope);
    // The challenge quotes every parameter down to visible ASCII and spaces.
    header.to_str().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_store_asks_to_try_again_shortly() {
        let result = store_error_result(Tool::ALL[0], &StoreError::from(ErrorKind::Unavailable));
        assert_eq!(
            result,
            ToolResult::error("the memory store is unavailable; try again shortly")
        );
    }

    #[test]
    fn every_tool_has_a_strict_schema_and_annotations() {
        for tool in Tool::ALL {
            let definition = tool.definition();
            assert_eq!(
                Tool::from_name(definition["name"].as_str().unwrap()),
                Some(tool)
            );
            assert_eq!(definition["inputSchema"]["type"], "object");
            assert_eq!(definition["inputSchema"]["additionalProperties"], false);
            assert_eq!(definition["outputSchema"]["type"], "object");
            assert!(definition["title"].is_string());
            assert!(definition["description"].as_str().unwrap().len() > 20);
            assert_eq!(definition["annotations"]["openWorldHint"], false);
            let read_only = definition["annotations"]["readOnlyHint"].as_bool().unwrap();
            assert_eq!(read_only, !tool.needs_write());
        }
    }

    #[test]
    fn derived_schemas_require_only_what_results_always_carry() {
        for tool in Tool::ALL {
            let definition = tool.definition();
            for schema in [&definition["inputSchema"], &definition["outputSchema"]] {
                assert!(schema["properties"].is_object(), "{}", tool.name());
                for name in schema["required"].as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap();
                    assert!(schema["properties"].get(name).is_some(), "{name}");
                }
            }
        }
        let list = Tool::ListMemories.definition();
        let size = &list["inputSchema"]["properties"]["size"];
        assert_eq!(size["type"], "integer");
        assert_eq!(
            (size["minimum"].as_u64(), size["maximum"].as_u64()),
            (Some(1), Some(100))
        );
        assert!(size.get("default").is_none());
        let search_memory = Tool::SearchMemory.definition();
        let output = &search_memory["outputSchema"];
        assert_eq!(
            output["required"],
            json!(["results"]),
            "message is optional"
        );
        let created_at = &output["properties"]["results"]["items"]["properties"]["created_at"];
        assert_eq!(created_at["type"], "integer");
        assert!(
            created_at["description"]
                .as_str()
                .unwrap()
                .contains("Unix seconds")
        );
    }

    #[test]
    fn titles_are_short_single_lines() {
        assert_eq!(title_of("  Likes   tea\nand more"), "Likes tea");
        assert_eq!(title_of("\n\n  x"), "x");
        let long = "é".repeat(200);
        let title = title_of(&long);
        assert_eq!(title.chars().count(), TITLE_CHARS);
        assert!(title.ends_with('…'));
        assert_eq!(title_of(" \n "), "Untitled memory");
    }

    #[test]
    fn scope_challenges_name_the_scope() {
        let resource = ProtectedResource::new("https://mcp.example", "https://auth.example");
        let challenge =
            insufficient_scope_challenge(&resource, MetadataLocation::WellKnown, SCOPE_WRITE);
        assert_eq!(
            challenge,
            "Bearer resource_metadata=\"https://mcp.example/.well-known/oauth-protected-resource/mcp\", scope=\"memories:write\", error=\"insufficient_scope\""
        );
        let challenge =
            insufficient_scope_challenge(&resource, MetadataLocation::UnderSse, SCOPE_READ);
        assert_eq!(
            challenge,
            "Bearer resource_metadata=\"https://mcp.example/mcp/sse/oauth-protected-resource\", scope=\"memories:read\", error=\"insufficient_scope\""
        );
    }

    #[test]
    fn argument_errors_are_tool_errors_and_printable() {
        let Err(ToolError::InvalidArguments(message)) =
            parse_arguments::<Map<String, Value>>(json!("text"))
        else {
            panic!("accepted a string");
        };
        assert_eq!(message, "arguments must be an object");
        assert_eq!(printable("a\u{0}b\nc"), "abc");
    }
}
