//! The route table: every operation of the REST API with its method, path template and
//! required scope, and the matcher the service routes with.
//!
//! The table is the router: [`RestApi`](super::RestApi) matches requests against
//! [`routes()`] and nothing else, and [`openapi_document`](super::openapi_document)
//! documents exactly the same entries, so the two cannot disagree.

use http::Method;

use crate::auth::{Caller, SCOPE_READ, SCOPE_WRITE};

/// One operation of the REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `GET /api/v1/memories/`: one page of the caller's memories.
    ListMemories,
    /// `POST /api/v1/memories/`: remember a new memory.
    CreateMemory,
    /// `DELETE /api/v1/memories/`: delete memories by id.
    DeleteMemories,
    /// `GET /api/v1/memories/{id}`: one memory (recorded in its access log).
    GetMemory,
    /// `PUT /api/v1/memories/{id}`: replace a memory's text (and metadata).
    UpdateMemory,
    /// `POST /api/v1/memories/actions/archive`: archive memories by id.
    ArchiveMemories,
    /// `POST /api/v1/memories/actions/pause`: pause or resume memories by id.
    PauseMemories,
    /// `POST /api/v1/memories/filter`: one page of memories, filters in a JSON body.
    FilterMemories,
    /// `GET /api/v1/memories/categories`: the caller's categories with counts.
    ListCategories,
    /// `GET /api/v1/memories/{id}/access-log`: who read a memory.
    GetAccessLog,
    /// `GET /api/v1/memories/{id}/related`: memories related to one.
    GetRelatedMemories,
    /// `GET /api/v1/stats/`: usage figures per app.
    GetStats,
}

impl Route {
    /// The OpenAPI `operationId`.
    #[must_use]
    pub fn operation_id(self) -> &'static str {
        match self {
            Route::ListMemories => "list_memories",
            Route::CreateMemory => "create_memory",
            Route::DeleteMemories => "delete_memories",
            Route::GetMemory => "get_memory",
            Route::UpdateMemory => "update_memory",
            Route::ArchiveMemories => "archive_memories",
            Route::PauseMemories => "pause_memories",
            Route::FilterMemories => "filter_memories",
            Route::ListCategories => "list_categories",
            Route::GetAccessLog => "get_access_log",
            Route::GetRelatedMemories => "get_related_memories",
            Route::GetStats => "get_stats",
        }
    }
}

/// The scope a route needs from the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequiredScope {
    /// [`SCOPE_READ`] (granted by [`SCOPE_WRITE`] too).
    Read,
    /// [`SCOPE_WRITE`].
    Write,
}

impl RequiredScope {
    /// The OAuth scope value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RequiredScope::Read => SCOPE_READ,
            RequiredScope::Write => SCOPE_WRITE,
        }
    }

    /// Whether `caller`'s token grants this scope.
    pub(crate) fn is_granted_to(self, caller: &Caller) -> bool {
        match self {
            RequiredScope::Read => caller.can_read(),
            RequiredScope::Write => caller.can_write(),
        }
    }
}

/// One row of the route table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RouteSpec {
    /// The HTTP method.
    pub method: Method,
    /// The path template as documented, e.g. `/api/v1/memories/{id}`. Requests match it with
    /// or without a trailing slash; `{id}` matches one path segment.
    pub path: &'static str,
    /// The operation.
    pub route: Route,
    /// The scope the token must grant.
    pub scope: RequiredScope,
}

/// The prefix of every route.
pub const API_PREFIX: &str = "/api/v1";

/// The path parameter that names a memory.
pub(crate) const ID_PARAMETER: &str = "{id}";

const fn spec(method: Method, path: &'static str, route: Route, scope: RequiredScope) -> RouteSpec {
    RouteSpec {
        method,
        path,
        route,
        scope,
    }
}

static ROUTES: [RouteSpec; 12] = [
    spec(
        Method::GET,
        "/api/v1/memories/",
        Route::ListMemories,
        RequiredScope::Read,
    ),
    spec(
        Method::POST,
        "/api/v1/memories/",
        Route::CreateMemory,
        RequiredScope::Write,
    ),
    spec(
        Method::DELETE,
        "/api/v1/memories/",
        Route::DeleteMemories,
        RequiredScope::Write,
    ),
    spec(
        Method::GET,
        "/api/v1/memories/{id}",
        Route::GetMemory,
        RequiredScope::Read,
    ),
    spec(
        Method::PUT,
        "/api/v1/memories/{id}",
        Route::UpdateMemory,
        RequiredScope::Write,
    ),
    spec(
        Method::POST,
        "/api/v1/memories/actions/archive",
        Route::ArchiveMemories,
        RequiredScope::Write,
    ),
    spec(
        Method::POST,
        "/api/v1/memories/actions/pause",
        Route::PauseMemories,
        RequiredScope::Write,
    ),
    spec(
        Method::POST,
        "/api/v1/memories/filter",
        Route::FilterMemories,
        RequiredScope::Read,
    ),
    spec(
        Method::GET,
        "/api/v1/memories/categories",
        Route::ListCategories,
        RequiredScope::Read,
    ),
    spec(
        Method::GET,
        "/api/v1/memories/{id}/access-log",
        Route::GetAccessLog,
        RequiredScope::Read,
    ),
    spec(
        Method::GET,
        "/api/v1/memories/{id}/related",
        Route::GetRelatedMemories,
        RequiredScope::Read,
    ),
    spec(
        Method::GET,
        "/api/v1/stats/",
        Route::GetStats,
        RequiredScope::Read,
    ),
];

/// Every route the service answers, in documentation order.
///
/// ```
/// use mcp_api::rest::{Route, routes};
///
/// let get = routes().iter().find(|spec| spec.route == Route::GetMemory);
/// assert_eq!(get.map(|spec| spec.path), Some("/api/v1/memories/{id}"));
/// ```
#[must_use]
pub fn routes() -> &'static [RouteSpec] {
    &ROUTES
}

/// A request path matched to a route.
#[derive(Debug)]
pub(crate) struct RouteMatch<'p> {
    /// The matched row.
    pub(crate) spec: &'static RouteSpec,
    /// The text of the `{id}` segment, not yet parsed.
    pub(crate) id: Option<&'p str>,
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteMiss {
    /// No route has this path.
    NotFound,
    /// Routes have this path, with these other methods.
    MethodNotAllowed(Vec<Method>),
}

/// Matches `method` and `path` against the route table.
///
/// Among the templates a path matches, those with the most literal segments win, so
/// `/api/v1/memories/categories` is the categories route and never a memory id.
pub(crate) fn match_route<'p>(method: &Method, path: &'p str) -> Result<RouteMatch<'p>, RouteMiss> {
    let segments = path_segments(path);
    let mut best_literals = 0;
    let mut best: Vec<(&'static RouteSpec, Option<&'p str>)> = Vec::new();
    for spec in routes() {
        let Some(matched) = match_template(spec.path, &segments) else {
            continue;
        };
        if matched.literals > best_literals {
            best_literals = matched.literals;
            best.clear();
        }
        if matched.literals == best_literals {
            best.push((spec, matched.id));
        }
    }
    if best.is_empty() {
        return Err(RouteMiss::NotFound);
    }
    match best.iter().find(|(spec, _)| spec.method == method) {
        Some(&(spec, id)) => Ok(RouteMatch { spec, id }),
        None => Err(RouteMiss::MethodNotAllowed(
            best.into_iter()
                .map(|(spec, _)| spec.method.clone())
                .collect(),
        )),
    }
}

struct TemplateMatch<'p> {
    literals: usize,
    id: Option<&'p str>,
}

/// The segments of a path without its leading slash and at most one trailing slash.
fn path_segments(path: &str) -> Vec<&str> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    path.split('/').collect()
}

fn match_template<'p>(template: &str, segments: &[&'p str]) -> Option<TemplateMatch<'p>> {
    let template = path_segments(template);
    if template.len() != segments.len() {
        return None;
    }
    let mut matched = TemplateMatch {
        literals: 0,
        id: None,
    };
    for (expected, actual) in template.iter().zip(segments) {
        if *expected == ID_PARAMETER {
            if actual.is_empty() {
                return None;
            }
            matched.id = Some(actual);
        } else if expected == actual {
            matched.literals += 1;
        } else {
            return None;
        }
    }
    Some(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched<'p>(method: &Method, path: &'p str) -> Result<(Route, Option<&'p str>), RouteMiss> {
        match_route(method, path).map(|m| (m.spec.route, m.id))
    }

    #[test]
    fn collection_matches_with_and_without_trailing_slash() {
        assert_eq!(
            matched(&Method::GET, "/api/v1/memories/"),
            Ok((Route::ListMemories, None))
        );
        assert_eq!(
            matched(&Method::POST, "/api/v1/memories"),
            Ok((Route::CreateMemory, None))
        );
        assert_eq!(
            matched(&Method::GET, "/api/v1/stats"),
            Ok((Route::GetStats, None))
        );
    }

    #[test]
    fn literal_segments_beat_the_id_parameter() {
        assert_eq!(
            matched(&Method::GET, "/api/v1/memories/categories"),
            Ok((Route::ListCategories, None))
        );
        assert_eq!(
            matched(&Method::PUT, "/api/v1/memories/categories"),
            Err(RouteMiss::MethodNotAllowed(vec![Method::GET]))
        );
        assert_eq!(
            matched(&Method::GET, "/api/v1/memories/filter"),
            Err(RouteMiss::MethodNotAllowed(vec![Method::POST]))
        );
    }

    #[test]
    fn id_segment_is_captured() {
        assert_eq!(
            matched(&Method::GET, "/api/v1/memories/abc/related"),
            Ok((Route::GetRelatedMemories, Some("abc")))
        );
        assert_eq!(
            matched(&Method::DELETE, "/api/v1/memories/abc"),
            Err(RouteMiss::MethodNotAllowed(vec![Method::GET, Method::PUT]))
        );
    }

    #[test]
    fn unknown_and_malformed_paths_are_not_found() {
        for path in [
            "/",
            "",
            "/api/v1",
            "/api/v1/apps/",
            "/api/v1/memories//",
            "/api/v1/memories//related",
            "/api/v2/memories/",
            "/api/v1/memories/a/b",
        ] {
            assert_eq!(
                matched(&Method::GET, path),
                Err(RouteMiss::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut ids: Vec<_> = routes().iter().map(|s| s.route.operation_id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), routes().len());
    }
}
