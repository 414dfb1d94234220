//! The memories: list and search, one memory, changes, bulk actions, delete everything,
//! export and import.

use std::collections::HashSet;

use bytes::Bytes;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};

use super::apps::name_of;
use super::form::{self, Fields};
use super::pages::{Answer, Current, Pages, redirect};
use super::time::{self, DAY_MS};
use super::transfer::{self, ExportFile};
use super::views::{self, ListFilters, ListView, Row, Section};
use crate::http::{BoxError, full, read_body};
use crate::store::{
    ListQuery, Memory, MemoryId, MemoryState, MemoryStore, NewMemory, Owner, SearchQuery,
    SortColumn, SortDirection, StoreError,
};

/// Memories per list page.
const PAGE_SIZE: u32 = 25;
/// Search results shown.
const SEARCH_LIMIT: u32 = 50;
/// Access-log entries shown on a memory's page.
const LOG_ENTRIES: u32 = 100;
/// Memories read or written per store call when exporting or importing.
const BATCH: u32 = 100;

impl<S: MemoryStore> Pages<S> {
    pub(super) async fn list(
        &self,
        current: &Current,
        query: &Fields,
    ) -> Result<Answer, StoreError> {
        let owner = current.owner();
        let filters = ListFilters {
            q: query.get("q").unwrap_or(""),
            app: query.get("app").unwrap_or(""),
            category: query.get("category").unwrap_or(""),
            state: query.get("state").unwrap_or(""),
            from: query.get("from").unwrap_or(""),
            to: query.get("to").unwrap_or(""),
        };
        let states = states_for(filters.state);
        let from = time::parse_day(filters.from);
        let to = time::parse_day(filters.to).map(|day| day + DAY_MS - 1);
        let stats = self.store.stats(owner).await?;
        let names = self
            .app_names(current, stats.apps.iter().map(|app| app.app.as_str()))
            .await;
        let apps: Vec<(String, String)> = stats
            .apps
            .iter()
            .map(|app| (app.app.clone(), name_of(&names, &app.app)))
            .collect();
        let categories: Vec<String> = self
            .store
            .categories(owner)
            .await?
            .into_iter()
            .map(|(category, _)| category)
            .collect();
        let (memories, paging, marks) = if filters.q.is_empty() {
            let page = query
                .get("page")
                .and_then(|p| p.parse::<u32>().ok())
                .unwrap_or(1)
                .max(1);
            let mut list = ListQuery::new()
                .with_states(states)
                .with_created_between(from, to)
                .with_page(page, PAGE_SIZE);
            if !filters.app.is_empty() {
                list = list.with_app(filters.app);
            }
            if !filters.category.is_empty() {
                list = list.with_categories([filters.category]);
            }
            let found = self.store.list(owner, &list).await?;
            let paging = Some((found.page, found.pages, found.total));
            (found.items, paging, Vec::new())
        } else {
            let mut search = SearchQuery::new(filters.q)
                .with_limit(SEARCH_LIMIT)
                .with_states(states);
            if !filters.app.is_empty() {
                search = search.with_app(filters.app);
            }
            if !filters.category.is_empty() {
                search = search.with_categories([filters.category]);
            }
            let hits = self.store.search(owner, &search).await?;
            let memories: Vec<Memory> = hits
                .into_iter()
                .map(|hit| hit.memory)
                .filter(|memory| {
                    from.is_none_or(|from| memory.created_at >= from)
                        && to.is_none_or(|to| memory.created_at <= to)
                })
                .collect();
            let marks = memories
                .iter()
                .map(|memory| crate::store::match_spans(filters.q, &memory.text))
                .collect();
            (memories, None, marks)
        };
        let mut marks: Vec<_> = marks;
        marks.resize(memories.len(), Vec::new());
        let rows: Vec<Row<'_>> = memories
            .iter()
            .zip(marks)
            .map(|(memory, marks)| Row {
                memory,
                app_name: names.get(&memory.app).map_or(&memory.app, |name| name),
                marks,
            })
            .collect();
        let base_query = {
            let mut serializer = form_urlencoded::Serializer::new(String::new());
            for (key, value) in [
                ("app", filters.app),
                ("category", filters.category),
                ("state", filters.state),
                ("from", filters.from),
                ("to", filters.to),
            ] {
                if !value.is_empty() {
                    serializer.append_pair(key, value);
                }
            }
            let text = serializer.finish();
            if text.is_empty() { text } else { text + "&" }
        };
        let title = if filters.q.is_empty() {
            "Your memories".to_owned()
        } else {
            format!("Search: {}", filters.q)
        };
        let view = ListView {
            rows,
            paging,
            apps: &apps,
            categories: &categories,
            csrf: &current.session.csrf,
            base_query,
            query: filters,
        };
        Ok(self.page_with_notice(
            &title,
            current,
            Section::Memories,
            query,
            &views::list(&view),
        ))
    }

    pub(super) async fn detail(
        &self,
        current: &Current,
        id: MemoryId,
        query: &Fields,
    ) -> Result<Answer, StoreError> {
        let owner = current.owner();
        let Some(memory) = self.store.memory(owner, id).await? else {
            return Ok(self.not_found(Some(current)));
        };
        let log = self
            .store
            .access_log(owner, id, 1, LOG_ENTRIES)
            .await?
            .map(|page| page.items)
            .unwrap_or_default();
        let names = self
            .app_names(
                current,
                std::iter::once(memory.app.as_str())
                    .chain(log.iter().map(|entry| entry.app.as_str())),
            )
            .await;
        let app_name = name_of(&names, &memory.app);
        let log: Vec<_> = log
            .into_iter()
            .map(|entry| {
                let name = name_of(&names, &entry.app);
                (entry, name)
            })
            .collect();
        Ok(self.page_with_notice(
            "Memory",
            current,
            Section::Memories,
            query,
            &views::detail(&memory, &app_name, &log, &current.session.csrf),
        ))
    }

    pub(super) async fn change(
        &self,
        current: &Current,
        id: MemoryId,
        fields: &Fields,
    ) -> Result<Answer, StoreError> {
        let owner = current.owner();
        let back = format!("/app/memories/{id}");
        let notice = match fields.get("action") {
            Some("save") => {
                let Some(text) = fields.get("text") else {
                    return Ok(self.bad_request(current, "A memory needs some text."));
                };
                match self
                    .store
                    .update_text(owner, id, text.replace("\r\n", "\n"), None)
                    .await
                {
                    Ok(Some(_)) => {}
                    Ok(None) => return Ok(self.not_found(Some(current))),
                    Err(error) => return self.input_error(current, error),
                }
                "saved"
            }
            Some("delete") => {
                if self.store.delete(owner, &[id]).await? == 0 {
                    return Ok(self.not_found(Some(current)));
                }
                return Ok(redirect("/app/?notice=deleted&n=1"));
            }
            Some(action) => match state_action(action) {
                Some(state) => {
                    if self.store.memory(owner, id).await?.is_none() {
                        return Ok(self.not_found(Some(current)));
                    }
                    self.store.set_state(owner, &[id], state).await?;
                    action_notice(action)
                }
                None => return Ok(self.bad_request(current, "Unknown action.")),
            },
            None => return Ok(self.bad_request(current, "No action chosen.")),
        };
        Ok(redirect(&format!("{back}?notice={notice}&n=1")))
    }

    pub(super) async fn bulk(
        &self,
        current: &Current,
        fields: &Fields,
    ) -> Result<Answer, StoreError> {
        let ids: Vec<MemoryId> = fields
            .all("ids")
            .filter_map(|id| id.parse().ok())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(redirect("/app/?notice=none-selected"));
        }
        if ids.len() > BATCH as usize {
            return Ok(self.bad_request(current, "Select at most 100 memories at a time."));
        }
        let owner = current.owner();
        let (changed, notice) = match fields.get("action") {
            Some("delete") => (self.store.delete(owner, &ids).await?, "deleted"),
            Some(action) => match state_action(action) {
                Some(state) => (
                    self.store.set_state(owner, &ids, state).await?,
                    action_notice(action),
                ),
                None => return Ok(self.bad_request(current, "Unknown action.")),
            },
            None => return Ok(self.bad_request(current, "No action chosen.")),
        };
        Ok(redirect(&format!("/app/?notice={notice}&n={changed}")))
    }

    pub(super) async fn delete_all_page(
        &self,
        current: &Current,
        wrong: bool,
    ) -> Result<Answer, StoreError> {
        let count = self.store.stats(current.owner()).await?.total_memories;
        let status = if wrong {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        Ok(self.page(
            status,
            "Delete everything",
            current,
            Section::Memories,
            &views::delete_all(count, &current.session.csrf, wrong),
        ))
    }

    pub(super) async fn delete_all(
        &self,
        current: &Current,
        fields: &Fields,
    ) -> Result<Answer, StoreError> {
        if fields.get("confirm") != Some("DELETE") {
            return self.delete_all_page(current, true).await;
        }
        let deleted = self.store.delete_all(current.owner()).await?;
        tracing::info!(
            subject = current.owner().as_str(),
            deleted,
            "deleted every memory from the memory page"
        );
        Ok(redirect(&format!("/app/?notice=deleted-all&n={deleted}")))
    }

    /// Every memory that is not deleted, oldest first.
    pub(super) async fn all_memories(&self, owner: &Owner) -> Result<Vec<Memory>, StoreError> {
        let mut memories = Vec::new();
        let mut page = 1;
        loop {
            let query = ListQuery::new()
                .with_states([
                    MemoryState::Active,
                    MemoryState::Paused,
                    MemoryState::Archived,
                ])
                .with_sort(SortColumn::CreatedAt, SortDirection::Ascending)
                .with_page(page, BATCH);
            let found = self.store.list(owner, &query).await?;
            let last = found.items.len() < BATCH as usize || u64::from(page) >= found.pages;
            memories.extend(found.items);
            if last {
                return Ok(memories);
            }
            page += 1;
        }
    }

    pub(super) async fn export(&self, current: &Current) -> Result<Answer, StoreError> {
        let memories = self.all_memories(current.owner()).await?;
        let now = i64::try_from(self.unix_now()).unwrap_or(0) * 1000;
        let body = serde_json::to_vec_pretty(&ExportFile::new(&memories, now))
            .unwrap_or_else(|_| b"{}".to_vec());
        let mut response = Response::new(full(body));
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(&format!(
            "attachment; filename=\"memories-{}.json\"",
            time::format_day(now)
        )) {
            headers.insert(CONTENT_DISPOSITION, value);
        }
        views::security_headers(headers);
        Ok(response)
    }

    pub(super) async fn import<B>(&self, request: Request<B>, current: &Current) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let boundary = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| multer::parse_boundary(value).ok());
        let Some(boundary) = boundary else {
            return self.bad_request(current, "Choose an export file to import.");
        };
        let body = match read_body(request.into_body(), self.config.max_import_bytes).await {
            Ok(body) => body,
            Err(error) => {
                return self.message_page(
                    error.status(),
                    "File too large",
                    current,
                    Section::Memories,
                    &format!(
                        "The file is larger than this server takes ({} MiB).",
                        self.config.max_import_bytes / (1024 * 1024)
                    ),
                );
            }
        };
        let (csrf, file) = match read_multipart(body, boundary).await {
            Ok(parts) => parts,
            Err(text) => return self.bad_request(current, text),
        };
        let csrf_fields = Fields::parse(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("csrf", csrf.as_deref().unwrap_or(""))
                .finish()
                .as_bytes(),
        );
        if let Err(forgery) = form::csrf_matches(&csrf_fields, &current.session.csrf) {
            return self.forbidden(current, forgery);
        }
        let Some(file) = file else {
            return self.bad_request(current, "Choose an export file to import.");
        };
        let imported = match transfer::read_export(&file) {
            Ok(imported) => imported,
            Err(error) => return self.bad_request(current, &error.to_string()),
        };
        match self.add_imported(current.owner(), imported).await {
            Ok((added, skipped)) => redirect(&format!(
                "/app/?notice=imported&n={added}&skipped={skipped}"
            )),
            Err(error) => self
                .input_error(current, error)
                .unwrap_or_else(|error| self.store_failed(current, &error)),
        }
    }

    /// Adds the memories whose text is not stored yet, in batches, then restores their
    /// states. Returns `(added, skipped)`.
    pub(super) async fn add_imported(
        &self,
        owner: &Owner,
        imported: Vec<transfer::ImportedMemory>,
    ) -> Result<(u64, u64), StoreError> {
        let mut known: HashSet<String> = self
            .all_memories(owner)
            .await?
            .into_iter()
            .map(|memory| memory.text)
            .collect();
        let total = imported.len() as u64;
        let fresh: Vec<_> = imported
            .into_iter()
            .filter(|memory| known.insert(memory.text.clone()))
            .collect();
        let mut added = 0;
        for chunk in fresh.chunks(BATCH as usize) {
            let batch = chunk
                .iter()
                .map(|memory| {
                    NewMemory::new(memory.text.clone(), memory.app.clone())
                        .with_metadata(memory.metadata.clone())
                        .with_categories(memory.categories.clone())
                })
                .collect();
            let stored = self.store.add(owner, batch).await?;
            added += stored.len() as u64;
            for state in [MemoryState::Paused, MemoryState::Archived] {
                let ids: Vec<MemoryId> = stored
                    .iter()
                    .zip(chunk)
                    .filter(|(_, memory)| memory.state == state)
                    .map(|(stored, _)| stored.id)
                    .collect();
                if !ids.is_empty() {
                    self.store.set_state(owner, &ids, state).await?;
                }
            }
        }
        Ok((added, total - added))
    }
}

fn states_for(filter: &str) -> Vec<MemoryState> {
    match filter {
        "active" => vec![MemoryState::Active],
        "paused" => vec![MemoryState::Paused],
        "archived" => vec![MemoryState::Archived],
        "all" => vec![
            MemoryState::Active,
            MemoryState::Paused,
            MemoryState::Archived,
        ],
        _ => vec![MemoryState::Active, MemoryState::Paused],
    }
}

fn state_action(action: &str) -> Option<MemoryState> {
    match action {
        "pause" => Some(MemoryState::Paused),
        "archive" => Some(MemoryState::Archived),
        "resume" => Some(MemoryState::Active),
        _ => None,
    }
}

fn action_notice(action: &str) -> &'static str {
    match action {
        "pause" => "paused",
        "archive" => "archived",
        _ => "resumed",
    }
}

/// The `csrf` field and the `file` part of an import form.
async fn read_multipart(
    body: Bytes,
    boundary: String,
) -> Result<(Option<String>, Option<Bytes>), &'static str> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let constraints = multer::Constraints::new()
        .allowed_fields(vec!["csrf", "file"])
        .size_limit(multer::SizeLimit::new().for_field("csrf", 1024));
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut csrf = None;
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().map(str::to_owned);
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|_| "The upload could not be read.")?;
                match name.as_deref() {
                    Some("csrf") => {
                        csrf = Some(String::from_utf8_lossy(&bytes).into_owned());
                    }
                    Some("file") if !bytes.is_empty() => file = Some(bytes),
                    _ => {}
                }
            }
            Ok(None) => return Ok((csrf, file)),
            Err(_) => return Err("The upload could not be read."),
        }
    }
}
