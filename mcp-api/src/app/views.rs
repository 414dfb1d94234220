//! The page's HTML, compile-checked by maud (every value is escaped), and the headers every
//! page is sent with.

use std::ops::Range;

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use maud::{DOCTYPE, Markup, html};

use crate::http::{ResponseBody, full};
use crate::store::{AccessLogEntry, Memory, MemoryState};

use super::chart;
use super::time::{format_day, format_time, iso_time};

/// The Content Security Policy of every page: nothing inline, nothing from elsewhere;
/// forms go to the page itself (and, through its redirects, to the provider).
#[derive(Debug, Default, Clone)]
pub(super) struct Csp {
    /// The provider's origin, for `form-action` (a form whose answer redirects to the
    /// sign-in page).
    pub(super) provider_origin: Option<String>,
}

impl Csp {
    fn header(&self) -> String {
        let provider = self
            .provider_origin
            .as_deref()
            .map(|origin| format!(" {origin}"))
            .unwrap_or_default();
        format!(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             form-action 'self'{provider}; frame-ancestors 'none'; base-uri 'none'"
        )
    }
}

/// An HTML response with the page's security headers.
pub(super) fn respond(status: StatusCode, page: Markup, csp: &Csp) -> Response<ResponseBody> {
    let mut response = Response::new(full(page.into_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&csp.header()) {
        headers.insert("content-security-policy", value);
    }
    security_headers(headers);
    response
}

/// Headers for every answer under `/app/`, pages and redirects alike.
pub(super) fn security_headers(headers: &mut http::HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it browsers send `Origin: null` on the page's own form posts.
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// Which section a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Memories,
    Apps,
    None,
}

/// The signed-in person, as every page shows them.
pub(super) struct Viewer<'a> {
    pub(super) name: &'a str,
    pub(super) csrf: &'a str,
}

/// The frame of every page.
pub(super) fn layout(
    title: &str,
    viewer: Option<&Viewer<'_>>,
    section: Section,
    notice: Option<&str>,
    body: &Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Memory" }
                link rel="icon" href="/app/assets/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/app/assets/app.css";
                script src="/app/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    p.brand { a href="/app/" { "Memory" } }
                    @if let Some(viewer) = viewer {
                        nav aria-label="Sections" {
                            ul {
                                li { a href="/app/" aria-current=[(section == Section::Memories).then_some("page")] { "Memories" } }
                                li { a href="/app/apps" aria-current=[(section == Section::Apps).then_some("page")] { "Apps" } }
                            }
                        }
                        form.signout method="post" action="/app/logout" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            span.who { (viewer.name) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    @if let Some(notice) = notice {
                        p.notice role="status" { (notice) }
                    }
                    (*body)
                }
            }
        }
    }
}

/// A memory's text with the spans in `marks` wrapped in `<mark>`.
pub(super) fn marked(text: &str, marks: &[Range<usize>]) -> Markup {
    let mut parts = Vec::new();
    let mut at = 0;
    for span in marks {
        if span.start < at || span.end > text.len() {
            continue;
        }
        parts.push((&text[at..span.start], false));
        parts.push((&text[span.clone()], true));
        at = span.end;
    }
    parts.push((&text[at..], false));
    html! {
        @for (part, is_mark) in parts {
            @if is_mark { mark { (part) } } @else { (part) }
        }
    }
}

/// The first `max` characters of `text`, with `…` if cut.
pub(super) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn state_badge(state: MemoryState) -> Markup {
    html! { span class={ "badge state-" (state.as_str()) } { (state.as_str()) } }
}

/// A memory in a list: checkbox, text (as a link), app, categories, state and date.
pub(super) struct Row<'a> {
    pub(super) memory: &'a Memory,
    pub(super) app_name: &'a str,
    pub(super) marks: Vec<Range<usize>>,
}

/// What the list page shows.
pub(super) struct ListView<'a> {
    pub(super) rows: Vec<Row<'a>>,
    pub(super) query: ListFilters<'a>,
    /// `(page, pages, total)` when listing; `None` for search results.
    pub(super) paging: Option<(u32, u64, u64)>,
    pub(super) apps: &'a [(String, String)],
    pub(super) categories: &'a [String],
    pub(super) csrf: &'a str,
    /// The query string of this view, without `page` (for the paging links).
    pub(super) base_query: String,
}

/// The filters as the person set them (echoed into the form).
#[derive(Default)]
pub(super) struct ListFilters<'a> {
    pub(super) q: &'a str,
    pub(super) app: &'a str,
    pub(super) category: &'a str,
    pub(super) state: &'a str,
    pub(super) from: &'a str,
    pub(super) to: &'a str,
}

const STATES: [(&str, &str); 5] = [
    ("", "Active and paused"),
    ("active", "Active"),
    ("paused", "Paused"),
    ("archived", "Archived"),
    ("all", "All"),
];

pub(super) fn list(view: &ListView<'_>) -> Markup {
    let filters = &view.query;
    html! {
        h1 { "Your memories" }
        form.search role="search" method="get" action="/app/" {
            div.field.grow {
                label for="q" { "Search memories" }
                input id="q" type="search" name="q" value=(filters.q) maxlength="1000" autocomplete="off";
            }
            div.field {
                label for="app" { "App" }
                select id="app" name="app" {
                    option value="" { "Any app" }
                    @for (id, name) in view.apps {
                        option value=(id) selected[filters.app == id] { (name) }
                    }
                }
            }
            div.field {
                label for="category" { "Category" }
                select id="category" name="category" {
                    option value="" { "Any category" }
                    @for category in view.categories {
                        option value=(category) selected[filters.category == category] { (category) }
                    }
                }
            }
            div.field {
                label for="state" { "State" }
                select id="state" name="state" {
                    @for (value, label) in STATES {
                        option value=(value) selected[filters.state == value] { (label) }
                    }
                }
            }
            div.field {
                label for="from" { "From" }
                input id="from" type="date" name="from" value=(filters.from);
            }
            div.field {
                label for="to" { "To" }
                input id="to" type="date" name="to" value=(filters.to);
            }
            div.field.actions {
                button type="submit" { "Search" }
            }
        }
        @if view.rows.is_empty() {
            p.empty {
                @if filters.q.is_empty() { "No memories match these filters." }
                @else { "Nothing found for “" (filters.q) "”." }
            }
        } @else {
            form.bulk method="post" action="/app/memories/bulk" {
                input type="hidden" name="csrf" value=(view.csrf);
                @if let Some((_, _, total)) = view.paging {
                    p.count { (total) " memories" }
                } @else {
                    p.count { (view.rows.len()) " best matches" }
                }
                div.toolbar {
                    label.selectall hidden { input type="checkbox" data-select-all="ids"; " Select all" }
                    button type="submit" name="action" value="pause" { "Pause selected" }
                    button type="submit" name="action" value="archive" { "Archive selected" }
                    button type="submit" name="action" value="resume" { "Resume selected" }
                    button.danger type="submit" name="action" value="delete" data-confirm="Delete the selected memories? This cannot be undone." { "Delete selected" }
                }
                ul.memories {
                    @for row in &view.rows {
                        li {
                            input type="checkbox" name="ids" value=(row.memory.id) id={ "m-" (row.memory.id) };
                            label.visually-hidden for={ "m-" (row.memory.id) } { "Select: " (shorten(&row.memory.text, 60)) }
                            div.memory {
                                a.text href={ "/app/memories/" (row.memory.id) } { (marked(&row.memory.text, &row.marks)) }
                                p.meta {
                                    (state_badge(row.memory.state))
                                    " " span.app { (row.app_name) }
                                    @for category in &row.memory.categories { " " span.category { (category) } }
                                    " " time datetime=(iso_time(row.memory.created_at)) { (format_time(row.memory.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some((page, pages, _)) = view.paging {
                @if pages > 1 {
                    nav.paging aria-label="Pages" {
                        @if page > 1 {
                            a rel="prev" href={ "/app/?" (view.base_query) "page=" (page - 1) } { "Previous" }
                        }
                        span { "Page " (page) " of " (pages) }
                        @if u64::from(page) < pages {
                            a rel="next" href={ "/app/?" (view.base_query) "page=" (page + 1) } { "Next" }
                        }
                    }
                }
            }
        }
        section.transfer aria-labelledby="transfer" {
            h2 id="transfer" { "Export, import, delete" }
            p { a.button href="/app/export" download { "Export all (JSON)" } }
            form method="post" action="/app/import" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(view.csrf);
                label for="file" { "Export file to import" }
                input id="file" type="file" name="file" accept="application/json,.json" required;
                button type="submit" { "Import" }
            }
            p { a.danger href="/app/delete-all" { "Delete everything…" } }
        }
    }
}

/// One memory, its edit form and its access log.
pub(super) fn detail(
    memory: &Memory,
    app_name: &str,
    log: &[(AccessLogEntry, String)],
    csrf: &str,
) -> Markup {
    let action = format!("/app/memories/{}", memory.id);
    html! {
        p { a href="/app/" { "← All memories" } }
        h1 { "Memory" }
        p.meta {
            (state_badge(memory.state))
            " Written by " span.app { (app_name) } " on "
            time datetime=(iso_time(memory.created_at)) { (format_time(memory.created_at)) }
            @if memory.updated_at != memory.created_at {
                ", changed " time datetime=(iso_time(memory.updated_at)) { (format_time(memory.updated_at)) }
            }
            @for category in &memory.categories { " " span.category { (category) } }
        }
        form.edit method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            div.field {
                label for="text" { "Text" }
                textarea id="text" name="text" rows="6" required { (memory.text) }
            }
            div.toolbar {
                button type="submit" name="action" value="save" { "Save" }
                @if memory.state == MemoryState::Active {
                    button type="submit" name="action" value="pause" { "Pause" }
                } @else {
                    button type="submit" name="action" value="resume" { "Resume" }
                }
                @if memory.state != MemoryState::Archived {
                    button type="submit" name="action" value="archive" { "Archive" }
                }
                button.danger type="submit" name="action" value="delete" data-confirm="Delete this memory? This cannot be undone." { "Delete" }
            }
        }
        @if !memory.metadata.is_empty() {
            details {
                summary { "Metadata" }
                pre { (serde_json::to_string_pretty(&memory.metadata).unwrap_or_default()) }
            }
        }
        section aria-labelledby="log" {
            h2 id="log" { "Who read it" }
            @if log.is_empty() {
                p.empty { "No app has read this memory yet." }
            } @else {
                div.scroll tabindex="0" role="region" aria-labelledby="log-caption" {
                    table.log {
                        caption id="log-caption" { "Access log" }
                        thead { tr { th scope="col" { "When" } th scope="col" { "App" } th scope="col" { "Through" } } }
                        tbody {
                            @for (entry, name) in log {
                                tr {
                                    td { time datetime=(iso_time(entry.accessed_at)) { (format_time(entry.accessed_at)) } }
                                    td { (name) }
                                    td { code { (entry.via) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An app on the apps page.
pub(super) struct AppRow {
    pub(super) client_id: String,
    pub(super) name: String,
    pub(super) written: u64,
    pub(super) read: u64,
    pub(super) last_used: Option<i64>,
    /// `(first granted, scope)` when the app holds a grant.
    pub(super) grant: Option<(i64, String)>,
    /// Whether this is the memory page itself.
    pub(super) this_page: bool,
}

pub(super) fn apps(
    rows: &[AppRow],
    activity: &chart::Activity,
    grants_unavailable: bool,
    csrf: &str,
) -> Markup {
    html! {
        h1 { "Apps" }
        p { "Apps that wrote or read your memories, and the apps you let sign in as you." }
        @if grants_unavailable {
            p.warning role="alert" { "The sign-in server could not be reached, so which apps hold access is not shown. Try again in a moment." }
        }
        @if rows.is_empty() {
            p.empty { "No app has used your memories yet." }
        } @else {
            div.scroll tabindex="0" role="region" aria-labelledby="apps-caption" {
                table.apps {
                    caption id="apps-caption" { "Apps and their access" }
                    thead {
                        tr {
                            th scope="col" { "App" }
                            th scope="col" { "Memories written" }
                            th scope="col" { "Reads" }
                            th scope="col" { "Last used" }
                            th scope="col" { "Access" }
                        }
                    }
                    tbody {
                        @for row in rows {
                            tr {
                                th scope="row" {
                                    (row.name)
                                    @if row.name != row.client_id { br; small.id { (row.client_id) } }
                                    @if row.this_page { br; small { "(this page)" } }
                                }
                                td { (row.written) }
                                td { (row.read) }
                                td {
                                    @if let Some(at) = row.last_used {
                                        time datetime=(iso_time(at)) { (format_time(at)) }
                                    } @else { "—" }
                                }
                                td {
                                    @if let Some((since, scope)) = &row.grant {
                                        "Since " time datetime=(iso_time(*since)) { (format_day(*since)) }
                                        @if !scope.is_empty() { br; small.scope { (scope) } }
                                        form.revoke method="post" action="/app/apps/revoke" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="client_id" value=(row.client_id);
                                            button.danger type="submit" data-confirm={ "Revoke the access of " (row.name) "? It will have to ask you again." } aria-label={ "Revoke access of " (row.name) } { "Revoke access" }
                                        }
                                    } @else if grants_unavailable {
                                        "Unknown"
                                    } @else {
                                        "No access"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (chart::render(activity))
    }
}

pub(super) fn delete_all(count: u64, csrf: &str, wrong: bool) -> Markup {
    html! {
        p { a href="/app/" { "← All memories" } }
        h1 { "Delete everything" }
        p { "This deletes all " strong { (count) } " of your memories and their access logs, for every app. It cannot be undone. You may want to " a href="/app/export" download { "export them" } " first." }
        form.confirm method="post" action="/app/delete-all" {
            input type="hidden" name="csrf" value=(csrf);
            div.field {
                label for="confirm" { "Type DELETE to confirm" }
                input id="confirm" name="confirm" autocomplete="off" required pattern="DELETE" aria-invalid=[wrong.then_some("true")] aria-describedby=[wrong.then_some("confirm-error")];
                @if wrong { p.error id="confirm-error" { "Type DELETE in capital letters." } }
            }
            button.danger type="submit" { "Delete everything" }
        }
    }
}

/// A page that says what went wrong and where to go.
pub(super) fn message(title: &str, text: &str, link: Option<(&str, &str)>) -> Markup {
    layout(
        title,
        None,
        Section::None,
        None,
        &html! {
            h1 { (title) }
            p { (text) }
            @if let Some((href, label)) = link {
                p { a href=(href) { (label) } }
            }
        },
    )
}

pub(super) fn not_configured() -> Markup {
    message(
        "Memory page not configured",
        "This server has no memory page. Its operator turns it on by registering the page as a client at the OpenID provider and setting MCP_APP_CLIENT_ID (and MCP_APP_CLIENT_SECRET).",
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_wrap_spans_and_escape_the_rest() {
        let text = "<b>tea</b> with milk";
        let html = marked(text, &[3..6, 11..15]).into_string();
        assert_eq!(
            html,
            "&lt;b&gt;<mark>tea</mark>&lt;/b&gt; <mark>with</mark> milk"
        );
        // Overlapping or out-of-range spans are skipped, never a panic.
        let html = marked("abc", &[0..2, 1..3, 2..9]).into_string();
        assert_eq!(html, "<mark>ab</mark>c");
    }

    #[test]
    fn shorten_cuts_at_characters() {
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hi", 2), "hi");
    }

    #[test]
    fn csp_forbids_inline_code() {
        let csp = Csp {
            provider_origin: Some("https://auth.example".into()),
        }
        .header();
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("style-src 'self';"));
        assert!(!csp.contains("unsafe"));
        assert!(csp.contains("form-action 'self' https://auth.example;"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
