//! The authorization endpoint (GET and POST) and the login chooser.
//!
//! Order matters: the client and the redirect URI are checked first, and any problem with
//! them is an error page — never a redirect (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2). Only
//! then are the other parameters checked by [`validate`] (sans I/O). Their errors redirect
//! to an operator-configured client with `state` and `iss`; a self-registered client's
//! (Dynamic Client Registration, Client ID Metadata Document) get an error page with a
//! link instead, because anyone can register any https redirect URI and an automatic
//! redirect there would make this server an open redirector (RFC 9700 §4.11.2: navigate
//! automatically only to trusted URIs). The user's own "Deny" on the consent page still
//! redirects: the user chose it, after seeing where it leads.

use http::request::Parts;
use http::{Method, StatusCode};

use super::config::ProviderConfig;
use super::errors::{ErrorCode, OAuthError, pkce_description};
use super::form::{self, Params};
use super::pages::{
    BrowserAnswer, ErrorPage, bad_request_page, error_redirect, expired_page, unavailable_page,
    untrusted_error_page,
};
use super::state::{ClientLookupError, ProviderState};
use crate::authn::{LoginRequest, TransactionId};
use crate::client::{Client, ClientKind};
use crate::html;
use crate::pkce::CodeChallenge;
use crate::redirect;
use crate::store::{PendingAuthorization, PendingKey, PendingStatus};
use crate::types::{ClientId, ResourceIndicator, Scope};

/// Longest `state` accepted (it is stored and echoed).
const MAX_STATE_LEN: usize = 2048;
/// Longest `nonce` accepted.
const MAX_NONCE_LEN: usize = 512;
/// Longest `login_hint` passed on (longer ones are ignored).
const MAX_LOGIN_HINT_LEN: usize = 256;
/// Most `resource` parameters in one request.
const MAX_RESOURCES: usize = 10;

/// An authorization request whose parameters passed validation.
#[derive(Debug)]
pub(crate) struct ValidatedRequest {
    pub(crate) code_challenge: CodeChallenge,
    pub(crate) scope: Scope,
    pub(crate) resources: Vec<ResourceIndicator>,
    pub(crate) nonce: Option<String>,
    pub(crate) force_login: bool,
    pub(crate) prompt_none: bool,
    pub(crate) login_hint: Option<String>,
}

/// An authorization request, parsed once: the client it names, and the rest of its
/// parameters, which [`validate`] checks against that client once it is found. A
/// missing or repeated `redirect_uri` or `state` is reported only after the client is
/// known, as RFC 6749 §4.1.2.1 orders the checks.
pub(crate) struct AuthorizeRequest {
    client_id: ClientId,
    /// Whether it came as a form `POST` (errors then redirect with 303).
    post: bool,
    params: Params,
}

impl AuthorizeRequest {
    /// Reads the query (`GET`) or form (`POST`) and the `client_id`.
    pub(crate) fn parse(parts: &Parts, body: &[u8]) -> Result<AuthorizeRequest, ErrorPage> {
        let post = parts.method == Method::POST;
        let params = if post {
            if !form::is_form(&parts.headers) {
                return Err(bad_request_page(
                    "The authorization request must be a form.",
                ));
            }
            Params::parse(body)
        } else {
            Params::parse(parts.uri.query().unwrap_or_default().as_bytes())
        };
        let Ok(params) = params else {
            return Err(bad_request_page(
                "The authorization request has too many parameters.",
            ));
        };
        let client_id = match params.get("client_id") {
            Ok(Some(id)) => id,
            Ok(None) => {
                return Err(bad_request_page(
                    "The request does not name a client (client_id).",
                ));
            }
            Err(_) => return Err(bad_request_page("The request names more than one client.")),
        };
        let Ok(client_id) = ClientId::parse(client_id) else {
            return Err(bad_request_page("The client id is not valid."));
        };
        Ok(AuthorizeRequest {
            client_id,
            post,
            params,
        })
    }
}

/// `GET`/`POST /authorize`.
pub(crate) async fn authorize(
    provider: &ProviderState,
    request: &AuthorizeRequest,
    now: u64,
) -> BrowserAnswer {
    let params = &request.params;
    // 1. The client.
    let client = match provider.find_client(&request.client_id, now).await {
        Ok(Some(client)) => client,
        Ok(None) => return bad_request_page("The application is not registered here.").into(),
        Err(ClientLookupError::MetadataDocument(error)) => {
            tracing::info!(%error, "client metadata document refused");
            return bad_request_page(
                "The application's client metadata document could not be used.",
            )
            .into();
        }
        Err(ClientLookupError::Store(error)) => {
            tracing::error!(%error, "client lookup failed");
            return unavailable_page().into();
        }
    };

    // 2. The redirect URI: exact match, loopback ports excepted.
    let redirect_uri = match params.get("redirect_uri") {
        Ok(Some(uri)) => uri,
        Ok(None) => return bad_request_page("The request has no redirect_uri.").into(),
        Err(_) => return bad_request_page("The request has more than one redirect_uri.").into(),
    };
    let Some(redirect_uri) = redirect::match_requested(&client.redirect_uris, redirect_uri) else {
        return bad_request_page("The redirect_uri is not registered for this application.").into();
    };

    // From here on, errors go back to the client (303 after a POST, RFC 9700 §4.12) if the
    // operator configured it; a self-registered client's redirect URI is not trusted, and
    // the user sees a page with a link to follow or not (RFC 9700 §4.11.2).
    let status = if request.post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let trusted = client.kind == ClientKind::Static;
    let reject = |state: Option<&str>, error: OAuthError| {
        if trusted {
            error_redirect(
                &provider.config().issuer,
                &redirect_uri,
                state,
                error,
                status,
            )
        } else {
            untrusted_error_page(&provider.config().issuer, &redirect_uri, state, error)
        }
    };
    let state = match params.get("state") {
        Ok(state) if state.is_none_or(|s| s.len() <= MAX_STATE_LEN) => state,
        _ => {
            return reject(
                None,
                OAuthError::invalid_request("state is repeated or too long"),
            );
        }
    };
    let validated = match validate(
        params,
        &client,
        provider.config(),
        provider.supported_scopes(),
    ) {
        Ok(validated) => validated,
        Err(error) => return reject(state, error),
    };
    if validated.prompt_none {
        // There are no provider sessions: a user is never already logged in.
        return reject(
            state,
            OAuthError::new(ErrorCode::LoginRequired, "the user must log in"),
        );
    }

    let Ok(transaction) = TransactionId::generate(provider.rng()) else {
        return reject(state, OAuthError::server_error());
    };
    let mut pending = PendingAuthorization::new(
        client.client_id.clone(),
        client.name.clone(),
        client.kind,
        redirect_uri.clone(),
        validated.code_challenge,
        validated.scope,
        validated.resources,
        now,
        now.saturating_add(provider.config().lifetimes.pending.as_secs()),
    );
    pending.state = state.map(str::to_owned);
    pending.nonce = validated.nonce;
    pending.force_login = validated.force_login;
    pending.login_hint = validated.login_hint;
    let login = login_request(&transaction, &pending);
    if let Err(error) = provider
        .store()
        .insert_pending(PendingKey::for_transaction(&transaction), pending)
        .await
    {
        tracing::error!(%error, "could not store a pending authorization");
        return reject(state, OAuthError::server_error());
    }

    match provider.authenticators() {
        [only] => BrowserAnswer::Page(only.start(login, now).await),
        several => chooser(provider, &transaction, several),
    }
}

/// Checks every parameter except `client_id`, `redirect_uri` and `state` (sans I/O).
pub(crate) fn validate(
    params: &Params,
    client: &Client,
    config: &ProviderConfig,
    supported_scopes: &[String],
) -> Result<ValidatedRequest, OAuthError> {
    if params.contains("request") {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.contains("request_uri") {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type")? {
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if params.get("response_mode")?.is_some_and(|m| m != "query") {
        return Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        ));
    }
    let code_challenge = CodeChallenge::from_request(
        params.get("code_challenge")?,
        params.get("code_challenge_method")?,
    )
    .map_err(|error| OAuthError::invalid_request(pkce_description(error)))?;

    let scope = requested_scope(params.get("scope")?, client, config, supported_scopes)?;
    let resources = requested_resources(params, config)?;
    // Each resource's default scopes join a request that names none of its own.
    let scope = config
        .scope_for_resources(&scope, &resources)
        .map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "the scope is too long"))?;

    let nonce = params.get("nonce")?;
    if nonce.is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(OAuthError::invalid_request("nonce is too long"));
    }

    let mut prompt_none = false;
    let mut force_login = false;
    if let Some(prompt) = params.get("prompt")? {
        let values: Vec<&str> = prompt.split(' ').collect();
        prompt_none = values.contains(&"none");
        if prompt_none && values.len() > 1 {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other values",
            ));
        }
        force_login = values.contains(&"login");
    }
    if let Some(max_age) = params.get("max_age")? {
        if max_age.parse::<u64>().is_err() {
            return Err(OAuthError::invalid_request(
                "max_age must be a non-negative integer",
            ));
        }
        // Without provider sessions the only way to honour any max_age is a fresh login.
        force_login = true;
    }
    let login_hint = params
        .get("login_hint")?
        .filter(|hint| hint.len() <= MAX_LOGIN_HINT_LEN)
        .map(str::to_owned);

    Ok(ValidatedRequest {
        code_challenge,
        scope,
        resources,
        nonce: nonce.map(str::to_owned),
        force_login,
        prompt_none,
        login_hint,
    })
}

/// The scope to grant: the request's (every token supported) or the default;
/// `offline_access` only for clients that may refresh.
fn requested_scope(
    requested: Option<&str>,
    client: &Client,
    config: &ProviderConfig,
    supported: &[String],
) -> Result<Scope, OAuthError> {
    let scope = match requested {
        None => config.effective_default_scope(),
        Some(text) => Scope::parse(text)
            .map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))?,
    };
    if !scope.iter().all(|t| supported.iter().any(|s| s == t)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "the scope names a scope this server does not support",
        ));
    }
    if client.refresh_tokens || !scope.contains("offline_access") {
        return Ok(scope);
    }
    Scope::from_tokens(scope.iter().filter(|t| *t != "offline_access")).map_err(|_| {
        OAuthError::new(
            ErrorCode::InvalidScope,
            "this client may not request offline_access",
        )
    })
}

/// The resources to grant: each requested one must be allowed; none means the default
/// audience.
fn requested_resources(
    params: &Params,
    config: &ProviderConfig,
) -> Result<Vec<ResourceIndicator>, OAuthError> {
    let mut resources: Vec<ResourceIndicator> = Vec::new();
    for value in params.all("resource") {
        if resources.len() == MAX_RESOURCES {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "too many resources",
            ));
        }
        let resource = ResourceIndicator::parse(value).map_err(|_| {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource must be an absolute uri without a fragment",
            )
        })?;
        if !config.allows_resource(&resource) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the resource is not served by this authorization server",
            ));
        }
        if !resources.contains(&resource) {
            resources.push(resource);
        }
    }
    if resources.is_empty() {
        resources.push(config.default_audience.clone());
    }
    Ok(resources)
}

fn login_request(transaction: &TransactionId, pending: &PendingAuthorization) -> LoginRequest {
    let mut request = LoginRequest::new(transaction.clone(), pending.client_name.clone());
    request.force_login = pending.force_login;
    request.login_hint = pending.login_hint.clone();
    request
}

/// A page listing the login methods.
fn chooser(
    provider: &ProviderState,
    transaction: &TransactionId,
    authenticators: &[std::sync::Arc<dyn crate::authn::Authenticator>],
) -> BrowserAnswer {
    let select_login = &provider.paths().select_login;
    let links = authenticators.iter().map(|authenticator| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("tx", transaction.as_str())
            .append_pair("method", authenticator.name())
            .finish();
        (format!("{select_login}?{query}"), authenticator.label())
    });
    let body = maud::html! {
        h1 { "Sign in" }
        @for (href, label) in links {
            p { a.primary href=(href) { (label) } }
        }
    };
    BrowserAnswer::Page(html::page(StatusCode::OK, "Sign in", &body))
}

/// A login chooser link: the transaction and the chosen method.
pub(crate) struct SelectLoginRequest {
    transaction: TransactionId,
    method: String,
}

impl SelectLoginRequest {
    /// Reads `?tx=…&method=…`.
    pub(crate) fn parse(parts: &Parts) -> Result<SelectLoginRequest, ErrorPage> {
        let invalid = || bad_request_page("The sign-in link is not valid.");
        let Ok(params) = Params::parse(parts.uri.query().unwrap_or_default().as_bytes()) else {
            return Err(invalid());
        };
        let (Ok(Some(tx)), Ok(Some(method))) = (params.get("tx"), params.get("method")) else {
            return Err(invalid());
        };
        let Some(transaction) = TransactionId::parse(tx) else {
            return Err(invalid());
        };
        Ok(SelectLoginRequest {
            transaction,
            method: method.to_owned(),
        })
    }
}

/// `GET /authorize/select?tx=…&method=…`: starts the chosen login method.
pub(crate) async fn select_login(
    provider: &ProviderState,
    request: &SelectLoginRequest,
    now: u64,
) -> BrowserAnswer {
    let transaction = &request.transaction;
    let method = request.method.as_str();
    let Some(authenticator) = provider
        .authenticators()
        .iter()
        .find(|a| a.name() == method)
    else {
        return bad_request_page("The sign-in method is not available.").into();
    };
    let pending = match provider
        .store()
        .pending(PendingKey::for_transaction(transaction), now)
        .await
    {
        Ok(Some(pending)) if pending.status == PendingStatus::AwaitingLogin => pending,
        Ok(_) => return expired_page().into(),
        Err(error) => {
            tracing::error!(%error, "could not read a pending authorization");
            return unavailable_page().into();
        }
    };
    BrowserAnswer::Page(
        authenticator
            .start(login_request(transaction, &pending), now)
            .await,
    )
}
