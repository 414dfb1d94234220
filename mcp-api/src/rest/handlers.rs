//! One function per route: typed input in, typed output out, every store call scoped to
//! the caller's owner. Nothing here reads an owner from the request.

use super::error::ApiError;
use super::model::{
    AccessLogPage, AccessLogParams, CategoriesResponse, CreateMemoryRequest, DeletedResponse,
    FilterMemoriesRequest, ListMemoriesParams, MemoryIdPath, MemoryIdsRequest, MemoryPage,
    MemoryResponse, PauseMemoriesRequest, RelatedMemoriesResponse, RelatedParams, SortField,
    SortOrder, StatsResponse, UpdateMemoryRequest, UpdatedResponse,
};
use crate::auth::Caller;
use crate::store::{
    Access, ErrorKind, ListQuery, MemoryId, MemoryState, MemoryStore, NewMemory, StoreError,
};

/// What `GET /api/v1/memories/{id}` records in the access log.
pub(crate) const VIA_REST_GET: &str = "rest:get";

/// The store checks the token's `client_id` as the memory's or reader's app.
const CLIENT_ID_FIELD: &[(&str, &str)] = &[("app", "client_id")];

/// How the store names the fields the list routes take.
const LIST_FIELDS: &[(&str, &str)] = &[
    ("from", "from_date"),
    ("to", "to_date"),
    ("text_contains", "search_query"),
];

pub(crate) async fn list_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    params: ListMemoriesParams,
) -> Result<MemoryPage, ApiError> {
    let categories = params
        .categories
        .as_deref()
        .map(split_comma_list)
        .unwrap_or_default();
    let filters = ListFilters {
        page: params.page,
        size: params.size,
        search_query: params.search_query,
        app: params.app_id,
        categories,
        sort_column: params.sort_column,
        sort_direction: params.sort_direction,
        from_date: params.from_date,
        to_date: params.to_date,
        show_archived: false,
    };
    let query = filters.into_list_query()?;
    let renames = [LIST_FIELDS, &[("app", "app_id")]].concat();
    let page = store
        .list(&caller.owner, &query)
        .await
        .map_err(|error| ApiError::from_store(error, &renames))?;
    Ok(MemoryPage::from(page))
}

pub(crate) async fn filter_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    request: FilterMemoriesRequest,
) -> Result<MemoryPage, ApiError> {
    let mut app_ids = request.app_ids.unwrap_or_default();
    if app_ids.len() > 1 {
        return Err(ApiError::invalid(
            "app_ids",
            "invalid app_ids: at most one app can be given",
        ));
    }
    let filters = ListFilters {
        page: request.page,
        size: request.size,
        search_query: request.search_query,
        app: app_ids.pop(),
        categories: request.categories.unwrap_or_default(),
        sort_column: request.sort_column,
        sort_direction: request.sort_direction,
        from_date: request.from_date,
        to_date: request.to_date,
        show_archived: request.show_archived,
    };
    let query = filters.into_list_query()?;
    let renames = [LIST_FIELDS, &[("app", "app_ids")]].concat();
    let page = store
        .list(&caller.owner, &query)
        .await
        .map_err(|error| ApiError::from_store(error, &renames))?;
    Ok(MemoryPage::from(page))
}

pub(crate) async fn create_memory<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    request: CreateMemoryRequest,
) -> Result<MemoryResponse, ApiError> {
    let memory = NewMemory::new(request.text, caller.app.as_str())
        .with_metadata(request.metadata.unwrap_or_default())
        .with_categories(request.categories.unwrap_or_default());
    let mut added = store
        .add(&caller.owner, vec![memory])
        .await
        .map_err(|error| ApiError::from_store(error, CLIENT_ID_FIELD))?;
    // The store returns one memory per input; an empty answer would be a store bug.
    let memory = added
        .pop()
        .ok_or_else(|| ApiError::Store(StoreError::from(ErrorKind::Backend)))?;
    Ok(MemoryResponse::from(memory))
}

pub(crate) async fn get_memory<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    path: MemoryIdPath,
) -> Result<MemoryResponse, ApiError> {
    let access = Access::new(caller.app.as_str(), VIA_REST_GET);
    store
        .get(&caller.owner, path.id, &access)
        .await
        .map_err(|error| ApiError::from_store(error, CLIENT_ID_FIELD))?
        .map(MemoryResponse::from)
        .ok_or(ApiError::MemoryNotFound)
}

pub(crate) async fn update_memory<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    path: MemoryIdPath,
    request: UpdateMemoryRequest,
) -> Result<MemoryResponse, ApiError> {
    store
        .update_text(
            &caller.owner,
            path.id,
            request.memory_content,
            request.metadata,
        )
        .await
        .map_err(|error| ApiError::from_store(error, &[("text", "memory_content")]))?
        .map(MemoryResponse::from)
        .ok_or(ApiError::MemoryNotFound)
}

pub(crate) async fn delete_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    request: MemoryIdsRequest,
) -> Result<DeletedResponse, ApiError> {
    let deleted = store
        .delete(&caller.owner, &request.memory_ids)
        .await
        .map_err(|error| ApiError::from_store(error, &[("ids", "memory_ids")]))?;
    Ok(DeletedResponse { deleted })
}

pub(crate) async fn archive_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    request: MemoryIdsRequest,
) -> Result<UpdatedResponse, ApiError> {
    set_state(store, caller, &request.memory_ids, MemoryState::Archived).await
}

pub(crate) async fn pause_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    request: PauseMemoriesRequest,
) -> Result<UpdatedResponse, ApiError> {
    set_state(store, caller, &request.memory_ids, request.state.into()).await
}

pub(crate) async fn list_categories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
) -> Result<CategoriesResponse, ApiError> {
    let categories = store
        .categories(&caller.owner)
        .await
        .map_err(|error| ApiError::from_store(error, &[]))?;
    Ok(CategoriesResponse::from(categories))
}

pub(crate) async fn get_access_log<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    path: MemoryIdPath,
    params: AccessLogParams,
) -> Result<AccessLogPage, ApiError> {
    store
        .access_log(&caller.owner, path.id, params.page, params.page_size)
        .await
        .map_err(|error| ApiError::from_store(error, &[("size", "page_size")]))?
        .map(AccessLogPage::from)
        .ok_or(ApiError::MemoryNotFound)
}

pub(crate) async fn get_related_memories<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    path: MemoryIdPath,
    params: RelatedParams,
) -> Result<RelatedMemoriesResponse, ApiError> {
    store
        .related(&caller.owner, path.id, params.size)
        .await
        .map_err(|error| ApiError::from_store(error, &[("limit", "size")]))?
        .map(RelatedMemoriesResponse::from)
        .ok_or(ApiError::MemoryNotFound)
}

pub(crate) async fn get_stats<S: MemoryStore>(
    store: &S,
    caller: &Caller,
) -> Result<StatsResponse, ApiError> {
    let stats = store
        .stats(&caller.owner)
        .await
        .map_err(|error| ApiError::from_store(error, &[]))?;
    Ok(StatsResponse::from(stats))
}

async fn set_state<S: MemoryStore>(
    store: &S,
    caller: &Caller,
    ids: &[MemoryId],
    state: MemoryState,
) -> Result<UpdatedResponse, ApiError> {
    let updated = store
        .set_state(&caller.owner, ids, state)
        .await
        .map_err(|error| ApiError::from_store(error, &[("ids", "memory_ids")]))?;
    Ok(UpdatedResponse { updated })
}

/// The filters shared by the list and filter routes.
struct ListFilters {
    page: u32,
    size: u32,
    search_query: Option<String>,
    app: Option<String>,
    categories: Vec<String>,
    sort_column: Option<SortField>,
    sort_direction: Option<SortOrder>,
    from_date: Option<i64>,
    to_date: Option<i64>,
    show_archived: bool,
}

impl ListFilters {
    /// The store query. Empty search and app filters mean no filter.
    fn into_list_query(self) -> Result<ListQuery, ApiError> {
        let mut states = vec![MemoryState::Active, MemoryState::Paused];
        if self.show_archived {
            states.push(MemoryState::Archived);
        }
        let from = self
            .from_date
            .map(|seconds| start_of_second(seconds, "from_date"))
            .transpose()?;
        let to = self
            .to_date
            .map(|seconds| end_of_second(seconds, "to_date"))
            .transpose()?;
        let mut query = ListQuery::new()
            .with_states(states)
            .with_categories(self.categories)
            .with_created_between(from, to)
            .with_sort(
                self.sort_column.unwrap_or(SortField::CreatedAt).into(),
                self.sort_direction.unwrap_or(SortOrder::Desc).into(),
            )
            .with_page(self.page, self.size);
        if let Some(needle) = self.search_query.filter(|needle| !needle.is_empty()) {
            query = query.with_text_contains(needle);
        }
        if let Some(app) = self.app.filter(|app| !app.is_empty()) {
            query = query.with_app(app);
        }
        Ok(query)
    }
}

/// A comma-separated list without blanks (`"work, ,health"` is `["work", "health"]`).
fn split_comma_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The first millisecond of a Unix second.
fn start_of_second(seconds: i64, field: &'static str) -> Result<i64, ApiError> {
    seconds
        .checked_mul(1000)
        .ok_or_else(|| ApiError::invalid(field, format!("invalid {field}: out of range")))
}

/// The last millisecond of a Unix second, so `to_date` includes the whole second.
fn end_of_second(seconds: i64, field: &'static str) -> Result<i64, ApiError> {
    start_of_second(seconds, field)?
        .checked_add(999)
        .ok_or_else(|| ApiError::invalid(field, format!("invalid {field}: out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_lists_drop_blanks() {
        assert_eq!(split_comma_list("work, ,health,"), ["work", "health"]);
        assert!(split_comma_list("").is_empty());
    }

    #[test]
    fn dates_cover_whole_seconds_and_refuse_overflow() {
        assert_eq!(start_of_second(2, "from_date").unwrap(), 2000);
        assert_eq!(end_of_second(2, "to_date").unwrap(), 2999);
        assert!(start_of_second(i64::MAX, "from_date").is_err());
        assert!(end_of_second(i64::MAX / 1000, "to_date").is_err());
    }
}
