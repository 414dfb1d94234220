//! The page's requests: routing to the actions (in `signin`, `memories` and `apps`), the
//! checks every form passes, and the answers shared by all of them.

use std::sync::Arc;

use bytes::Bytes;
use http::header::LOCATION;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use jwks_verify::{Clock, Verifier};
use maud::Markup;

use super::directory::SessionDirectory;
use super::form::{self, Fields, Forgery, MAX_FORM_BYTES};
use super::oauth::{OAuthError, Provider};
use super::session::Session;
use super::views::{self, Csp, Section, Viewer};
use super::{APP_PATH, AppConfig, HttpClient, assets};
use crate::http::{BoxError, ResponseBody, empty_response, read_body};
use crate::store::{MemoryId, MemoryStore, Owner, StoreError};

/// Everything the page needs, shared by its requests.
pub(super) struct Pages<S> {
    pub(super) config: AppConfig,
    pub(super) store: Arc<S>,
    pub(super) verifier: Verifier,
    pub(super) provider: Provider,
    pub(super) sessions: SessionDirectory,
    /// The verifier's clock, the service's one clock.
    pub(super) clock: Arc<dyn Clock>,
    pub(super) origin: String,
    pub(super) session_cookie: &'static str,
    pub(super) login_cookie: &'static str,
    pub(super) secure: bool,
    pub(super) csp: Csp,
}

/// The signed-in person of one request.
pub(super) struct Current {
    pub(super) session: Arc<Session>,
    pub(super) access_token: String,
}

impl Current {
    pub(super) fn owner(&self) -> &Owner {
        &self.session.owner
    }

    pub(super) fn viewer(&self) -> Viewer<'_> {
        Viewer {
            name: &self.session.display_name,
            csrf: &self.session.csrf,
        }
    }
}

pub(super) type Answer = Response<ResponseBody>;

impl<S: MemoryStore> Pages<S> {
    pub(super) fn new(
        config: AppConfig,
        store: Arc<S>,
        verifier: Verifier,
        http: Arc<dyn HttpClient>,
        sessions: SessionDirectory,
    ) -> Self {
        let secure = !config.insecure_loopback();
        let (session_cookie, login_cookie) = if secure {
            ("__Host-memory_session", "__Host-memory_login")
        } else {
            ("memory_session", "memory_login")
        };
        let clock = verifier.clock();
        Pages {
            origin: form::origin_of(&config.base_url),
            provider: Provider::new(&config, http),
            sessions,
            clock,
            csp: Csp {
                provider_origin: Some(form::origin_of(&config.issuer)),
            },
            config,
            store,
            verifier,
            session_cookie,
            login_cookie,
            secure,
        }
    }

    /// Now, in Unix seconds, on the service's clock.
    pub(super) fn unix_now(&self) -> u64 {
        self.clock.unix_time()
    }

    pub(super) async fn handle<B>(&self, request: Request<B>) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let path = request.uri().path().to_owned();
        let rest = path.strip_prefix(APP_PATH).unwrap_or("");
        let method = request.method().clone();
        if rest.is_empty() {
            return redirect("/app/");
        }
        if method == Method::GET {
            if let Some(name) = rest.strip_prefix("/assets/") {
                return assets::asset(name).unwrap_or_else(|| self.not_found(None));
            }
            let query = request.uri().query().unwrap_or("").to_owned();
            match rest {
                "/login" => return self.login(&query).await,
                "/callback" => return self.callback(&query, request.headers()).await,
                _ => {}
            }
        }
        // A form from another origin is refused before anything else, signed in or not
        // (a cross-site post usually arrives without the `SameSite` session cookie).
        if method == Method::POST && form::same_origin(request.headers(), &self.origin).is_err() {
            tracing::warn!("refused a form that did not come from the memory page");
            return views::respond(
                StatusCode::FORBIDDEN,
                views::message(
                    "Refused",
                    "This request did not come from a page of this site, so it was refused and nothing changed.",
                    Some(("/app/", "Go to your memories")),
                ),
                &self.csp,
            );
        }
        let current = match self.authenticate(request.headers()).await {
            Ok(Some(current)) => current,
            Err(_) => return self.sessions_unavailable(),
            Ok(None) if method == Method::POST && rest == "/logout" => return redirect("/app/"),
            Ok(None) => {
                let next = if method == Method::GET {
                    request
                        .uri()
                        .path_and_query()
                        .map_or("/app/", |p| p.as_str())
                        .to_owned()
                } else {
                    "/app/".to_owned()
                };
                return redirect(&format!(
                    "/app/login?{}",
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", &next)
                        .finish()
                ));
            }
        };
        if method == Method::POST {
            return self.post(request, rest, &current).await;
        }
        if method != Method::GET {
            return self.message_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                &current,
                Section::None,
                "This address does not take that kind of request.",
            );
        }
        let query = Fields::parse(request.uri().query().unwrap_or("").as_bytes());
        let result = match rest {
            "/" => self.list(&current, &query).await,
            "/apps" => self.apps(&current, &query).await,
            "/export" => self.export(&current).await,
            "/delete-all" => self.delete_all_page(&current, false).await,
            _ => match rest.strip_prefix("/memories/").map(str::parse::<MemoryId>) {
                Some(Ok(id)) => self.detail(&current, id, &query).await,
                _ => Ok(self.not_found(Some(&current))),
            },
        };
        result.unwrap_or_else(|error| self.store_failed(&current, &error))
    }

    /// State-changing requests, their origin already checked: the CSRF token, then the action.
    async fn post<B>(&self, request: Request<B>, rest: &str, current: &Current) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if rest == "/import" {
            return self.import(request, current).await;
        }
        let body = match read_body(request.into_body(), MAX_FORM_BYTES).await {
            Ok(body) => body,
            Err(error) => {
                return self.message_page(
                    error.status(),
                    "Form too large",
                    current,
                    Section::None,
                    &error.to_string(),
                );
            }
        };
        let fields = Fields::parse(&body);
        if let Err(forgery) = form::csrf_matches(&fields, &current.session.csrf) {
            return self.forbidden(current, forgery);
        }
        let result = match rest {
            "/logout" => return self.logout(current).await,
            "/memories/bulk" => self.bulk(current, &fields).await,
            "/delete-all" => self.delete_all(current, &fields).await,
            "/apps/revoke" => return self.revoke(current, &fields).await,
            _ => match rest.strip_prefix("/memories/").map(str::parse::<MemoryId>) {
                Some(Ok(id)) => self.change(current, id, &fields).await,
                _ => Ok(self.not_found(Some(current))),
            },
        };
        result.unwrap_or_else(|error| self.store_failed(current, &error))
    }
}

/// Answers.
impl<S: MemoryStore> Pages<S> {
    pub(super) fn page(
        &self,
        status: StatusCode,
        title: &str,
        current: &Current,
        section: Section,
        body: &Markup,
    ) -> Answer {
        let viewer = current.viewer();
        views::respond(
            status,
            views::layout(title, Some(&viewer), section, None, body),
            &self.csp,
        )
    }

    /// A page that says one thing (an error, a refusal), with its title as the heading.
    pub(super) fn message_page(
        &self,
        status: StatusCode,
        title: &str,
        current: &Current,
        section: Section,
        text: &str,
    ) -> Answer {
        self.page(status, title, current, section, &message_body(title, text))
    }

    pub(super) fn page_with_notice(
        &self,
        title: &str,
        current: &Current,
        section: Section,
        query: &Fields,
        body: &Markup,
    ) -> Answer {
        let viewer = current.viewer();
        let notice = notice_text(query);
        views::respond(
            StatusCode::OK,
            views::layout(title, Some(&viewer), section, notice.as_deref(), body),
            &self.csp,
        )
    }

    pub(super) fn not_found(&self, current: Option<&Current>) -> Answer {
        match current {
            Some(current) => self.message_page(
                StatusCode::NOT_FOUND,
                "Not found",
                current,
                Section::None,
                "There is no such page or memory here.",
            ),
            None => views::respond(
                StatusCode::NOT_FOUND,
                views::message(
                    "Not found",
                    "There is no such page here.",
                    Some(("/app/", "Go to your memories")),
                ),
                &self.csp,
            ),
        }
    }

    pub(super) fn bad_request(&self, current: &Current, text: &str) -> Answer {
        self.message_page(
            StatusCode::BAD_REQUEST,
            "Could not do that",
            current,
            Section::None,
            text,
        )
    }

    /// A store error caused by what the person entered (too long, over quota) is shown
    /// to them; anything else is a server failure.
    pub(super) fn input_error(
        &self,
        current: &Current,
        error: StoreError,
    ) -> Result<Answer, StoreError> {
        match error.kind() {
            crate::store::ErrorKind::InvalidInput { .. }
            | crate::store::ErrorKind::QuotaExceeded { .. } => {
                Ok(self.bad_request(current, &error.to_string()))
            }
            _ => Err(error),
        }
    }

    pub(super) fn forbidden(&self, current: &Current, forgery: Forgery) -> Answer {
        tracing::warn!(
            subject = current.owner().as_str(),
            ?forgery,
            "refused a form that did not come from the memory page"
        );
        self.message_page(StatusCode::FORBIDDEN, "Refused", current, Section::None, 
                "This request did not come from a page of this site, so it was refused and nothing changed. Reload the page and try again.",
        )
    }

    pub(super) fn store_failed(&self, current: &Current, error: &StoreError) -> Answer {
        tracing::error!(%error, "memory page: the store failed");
        self.message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            current,
            Section::None,
            "Your memories could not be reached just now. Nothing was lost; try again in a moment.",
        )
    }

    pub(super) fn provider_failed(&self, error: &OAuthError) -> Answer {
        tracing::warn!(%error, "memory page: the OpenID provider failed");
        views::respond(
            StatusCode::BAD_GATEWAY,
            views::message(
                "Sign-in server unavailable",
                "The sign-in server could not be reached or refused the request. Try again in a moment.",
                Some(("/app/", "Try again")),
            ),
            &self.csp,
        )
    }

    /// The shared session tables could not be reached: nothing changed, try again.
    pub(super) fn sessions_unavailable(&self) -> Answer {
        views::respond(
            StatusCode::SERVICE_UNAVAILABLE,
            views::message(
                "Try again",
                "Your session could not be checked just now. Nothing was lost; try again in a moment.",
                Some(("/app/", "Try again")),
            ),
            &self.csp,
        )
    }

    pub(super) fn sign_in_failed(&self, text: &str) -> Answer {
        views::respond(
            StatusCode::BAD_REQUEST,
            views::message(
                "Sign-in failed",
                text,
                Some(("/app/login", "Sign in again")),
            ),
            &self.csp,
        )
    }
}

/// A page's body that says one thing, under the page's title.
fn message_body(title: &str, text: &str) -> Markup {
    maud::html! { h1 { (title) } p { (text) } p { a href="/app/" { "Back to your memories" } } }
}

/// A 303 to `location` (after a POST the browser GETs it).
pub(super) fn redirect(location: &str) -> Answer {
    let mut response = empty_response(StatusCode::SEE_OTHER);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    views::security_headers(response.headers_mut());
    response
}

/// The message of a `notice` code (never text from the request itself).
pub(super) fn notice_text(query: &Fields) -> Option<String> {
    let n: u64 = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
    let plural = |count: u64| if count == 1 { "memory" } else { "memories" };
    Some(match query.get("notice")? {
        "saved" => "Saved.".to_owned(),
        "paused" => format!("Paused {n} {}.", plural(n)),
        "archived" => format!("Archived {n} {}.", plural(n)),
        "resumed" => format!("Resumed {n} {}.", plural(n)),
        "deleted" => format!("Deleted {n} {}.", plural(n)),
        "deleted-all" => format!("Deleted all {n} of your memories."),
        "none-selected" => "No memories were selected.".to_owned(),
        "imported" => {
            let skipped: u64 = query
                .get("skipped")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            format!(
                "Imported {n} {}; skipped {skipped} already here.",
                plural(n)
            )
        }
        "revoked" => format!("Access revoked ({n} grants)."),
        _ => return None,
    })
}
