//! One function per route: typed input in, typed output out, every store call scoped to
//! the caller's owner. Nothing here reads an owner from the request.

use super::error::ApiError;
use super::model::{
    AccessLogPage, AccessLogParams, CategoriesResponse, CreateMemoryRequest, DeletedResponse,
    FilterMemoriesRequest, ListMemoriesParams, MemoryDetailResponse, MemoryIdPath,
    MemoryIdsRequest, MemoryPage, MemoryResponse, PauseMemoriesRequest, RelatedMemoriesResponse,
    RelatedParams, SortField, SortOrder, StatsResponse, UpdateMemoryRequest, UpdatedResponse,
    documented_limits,
};
use crate::auth::Caller;
use crate::store::{
    Access, ErrorKind, ListQuery, MAX_APP_BYTES, MemoryId, MemoryState, MemoryStore, NewMemory,
    StoreError,
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
    let categories = match params.categories.as_deref() {
        Some(list) => split_comma_list(list)?,
        None => Vec::new(),
    };
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
    let (page, size) = (filters.page, filters.size);
    let Some(query) = filters.into_list_query()? else {
        return Ok(MemoryPage::empty(page, size));
    };
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
    let categories = request.categories.unwrap_or_default();
    check_category_count(categories.len())?;
    let filters = ListFilters {
        page: request.page,
        size: request.size,
        search_query: request.search_query,
        app: app_ids.pop(),
        categories,
        sort_column: request.sort_column,
        sort_direction: request.sort_direction,
        from_date: request.from_date,
        to_date: request.to_date,
        show_archived: request.show_archived.unwrap_or(false),
    };
    let (page, size) = (filters.page, filters.size);
    let Some(query) = filters.into_list_query()? else {
        return Ok(MemoryPage::empty(page, size));
    };
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
    let categories = request.categories.unwrap_or_default();
    check_new_categories(&categories)?;
    let memory = NewMemory::new(request.text, caller.app.as_str())
        .with_metadata(request.metadata.unwrap_or_default())
        .with_categories(categories);
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
) -> Result<MemoryDetailResponse, ApiError> {
    let access = Access::new(caller.app.as_str(), VIA_REST_GET);
    store
        .get(&caller.owner, path.id, &access)
        .await
        .map_err(|error| ApiError::from_store(error, CLIENT_ID_FIELD))?
        .map(MemoryDetailResponse::from)
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
    /// The store query, or `None` when no memory can match (an inverted date range, an app
    /// or categories no memory can have). Empty search and app filters mean no filter.
    fn into_list_query(self) -> Result<Option<ListQuery>, ApiError> {
        // Every rule the schemas state is checked before a filter can end the request early.
        check_page(self.page, self.size)?;
        check_search_query(self.search_query.as_deref())?;
        let from = self.from_date.map(start_of_second);
        let to = self.to_date.map(end_of_second);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Ok(None);
        }
        let mut states = vec![MemoryState::Active, MemoryState::Paused];
        if self.show_archived {
            states.push(MemoryState::Archived);
        }
        let mut query = ListQuery::new()
            .with_states(states)
            .with_created_between(from, to)
            .with_sort(
                self.sort_column.unwrap_or(SortField::CreatedAt).into(),
                self.sort_direction.unwrap_or(SortOrder::Desc).into(),
            )
            .with_page(self.page, self.size);
        if let Some(needle) = self.search_query.filter(|needle| !needle.is_empty()) {
            // Stored text never contains NUL, so such a needle matches nothing.
            if needle.contains('\0') {
                return Ok(None);
            }
            query = query.with_text_contains(needle);
        }
        if let Some(app) = self.app.filter(|app| !app.is_empty()) {
            if !is_possible_app(&app) {
                return Ok(None);
            }
            query = query.with_app(app);
        }
        let wanted: Vec<String> = self
            .categories
            .iter()
            .map(|category| category.trim().to_lowercase())
            .filter(|category| !category.is_empty())
            .collect();
        let possible: Vec<String> = wanted
            .iter()
            .filter(|category| is_possible_category(category))
            .cloned()
            .collect();
        if possible.is_empty() && !wanted.is_empty() {
            return Ok(None);
        }
        Ok(Some(query.with_categories(possible)))
    }
}

/// Whether some memory can have been written by `app` (the store refuses other apps).
fn is_possible_app(app: &str) -> bool {
    app.len() <= MAX_APP_BYTES && !app.chars().any(char::is_control)
}

/// Whether some memory can have the normalised `category` (the store refuses others).
fn is_possible_category(category: &str) -> bool {
    category.chars().count() <= documented_limits().max_category_chars
        && !category.chars().any(char::is_control)
}

/// The page rules the schemas state, checked before a filter that matches nothing ends the
/// request early.
fn check_page(page: u32, size: u32) -> Result<(), ApiError> {
    if page == 0 {
        return Err(ApiError::invalid(
            "page",
            "invalid page: pages are numbered from 1",
        ));
    }
    let max = documented_limits().max_page_size;
    if size == 0 || size > max {
        return Err(ApiError::invalid(
            "size",
            format!("invalid size: must be between 1 and {max}"),
        ));
    }
    Ok(())
}

/// A search of at most the query limit in bytes.
fn check_search_query(needle: Option<&str>) -> Result<(), ApiError> {
    let max = documented_limits().max_query_bytes;
    if needle.is_some_and(|needle| needle.len() > max) {
        return Err(ApiError::invalid(
            "search_query",
            format!("invalid search_query: must be at most {max} bytes"),
        ));
    }
    Ok(())
}

/// At most as many category filters as the store takes.
fn check_category_count(count: usize) -> Result<(), ApiError> {
    let max = documented_limits().max_categories;
    if count > max {
        return Err(ApiError::invalid(
            "categories",
            format!("invalid categories: at most {max} categories"),
        ));
    }
    Ok(())
}

/// New categories are at most the limit in characters as sent, the bound the schema states
/// (the store checks again after trimming and lowercasing), and hold no control character,
/// not even white space the store would trim (the schema's pattern says so).
pub(crate) fn check_new_categories(categories: &[String]) -> Result<(), ApiError> {
    let max = documented_limits().max_category_chars;
    for category in categories {
        if category.chars().count() > max {
            return Err(ApiError::invalid(
                "categories",
                format!("invalid categories: a category must be at most {max} characters"),
            ));
        }
        if category.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "categories",
                "invalid categories: a category must not contain control characters",
            ));
        }
    }
    Ok(())
}

/// A comma-separated list without blanks (`"work, ,health"` is `["work", "health"]`), of at
/// most the category limit of entries, blanks included.
fn split_comma_list(list: &str) -> Result<Vec<String>, ApiError> {
    check_category_count(list.split(',').count())?;
    Ok(list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The first millisecond of a Unix second (saturating: a date beyond the millisecond range
/// is the end of that range, which no memory is created after).
fn start_of_second(seconds: i64) -> i64 {
    seconds.saturating_mul(1000)
}

/// The last millisecond of a Unix second, so `to_date` includes the whole second.
fn end_of_second(seconds: i64) -> i64 {
    start_of_second(seconds).saturating_add(999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_lists_drop_blanks_and_count_every_entry() {
        assert_eq!(
            split_comma_list("work, ,health,").unwrap(),
            ["work", "health"]
        );
        assert!(split_comma_list("").unwrap().is_empty());
        assert_eq!(split_comma_list(&",".repeat(31)).unwrap().len(), 0);
        assert!(split_comma_list(&",".repeat(32)).is_err());
    }

    #[test]
    fn dates_cover_whole_seconds_and_saturate() {
        assert_eq!(start_of_second(2), 2000);
        assert_eq!(end_of_second(2), 2999);
        assert_eq!(start_of_second(i64::MAX), i64::MAX);
        assert_eq!(end_of_second(i64::MAX / 1000), i64::MAX);
        assert_eq!(start_of_second(i64::MIN), i64::MIN);
        assert_eq!(end_of_second(i64::MIN), i64::MIN + 999);
    }

    #[test]
    fn impossible_filters_match_nothing_without_asking_the_store() {
        let filters = |app: Option<&str>, categories: &[&str], from, to| ListFilters {
            page: 1,
            size: 10,
            search_query: None,
            app: app.map(str::to_owned),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            sort_column: None,
            sort_direction: None,
            from_date: from,
            to_date: to,
            show_archived: false,
        };
        let none = |f: ListFilters| f.into_list_query().unwrap().is_none();
        assert!(none(filters(None, &[], Some(10), Some(9))));
        assert!(!none(filters(None, &[], Some(10), Some(10))));
        assert!(none(filters(Some(&"a".repeat(256)), &[], None, None)));
        assert!(none(filters(Some("a\u{7}"), &[], None, None)));
        assert!(!none(filters(Some(""), &[], None, None)));
        assert!(none(filters(None, &[&"x".repeat(65)], None, None)));
        assert!(!none(filters(None, &[&"x".repeat(65), "work"], None, None)));
        assert!(!none(filters(None, &[" ", ""], None, None)));
        let mut long_search = filters(None, &[], Some(10), Some(9));
        long_search.search_query = Some("q".repeat(1025));
        assert!(long_search.into_list_query().is_err());
    }
}
