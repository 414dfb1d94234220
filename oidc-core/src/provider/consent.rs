//! The consent page and its form.
//!
//! The page is server-rendered without JavaScript. It names the client (as the client
//! itself claims, with a warning for self-registered clients), shows the host the browser
//! will be sent to, the scopes in words and the resources. The form posts back to
//! `/consent` with the transaction id and a CSRF token made for this transaction when the
//! login finished (only its hash is stored). A post carrying an `Origin` other than the
//! issuer's is refused; the page sets `Referrer-Policy: same-origin` so browsers send the
//! real origin (not `null`) with the form, and its CSP allows the form to be followed by
//! the redirect to the client's origin.

use http::header::{CONTENT_SECURITY_POLICY, ORIGIN, REFERRER_POLICY};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use zeroize::Zeroizing;

use super::errors::{ErrorCode, OAuthError};
use super::form::{self, Params};
use super::pages::{
    BrowserAnswer, Destination, ErrorPage, bad_request_page, error_redirect, expired_page,
    redirect_location, refused_page, unavailable_page,
};
use super::state::ProviderState;
use crate::audit::{self, AuditEvent};
use crate::authn::{AuthenticatedUser, TransactionId};
use crate::client::ClientKind;
use crate::html;
use crate::secret::Secret;
use crate::store::{
    AuthorizationCodeRecord, GrantLogin, PendingAuthorization, PendingKey, PendingStatus,
    ReleasedClaims,
};
use crate::types::Scope;

/// A login finished: moves the transaction to consent and shows the page.
pub(crate) async fn begin(
    provider: &ProviderState,
    transaction: &TransactionId,
    user: AuthenticatedUser,
    now: u64,
) -> BrowserAnswer {
    let Ok(csrf) = Secret::generate(provider.rng()) else {
        return unavailable_page().into();
    };
    let key = PendingKey::for_transaction(transaction);
    let pending = match provider
        .store()
        .complete_login(key, user.clone(), csrf.to_hash(), now)
        .await
    {
        Ok(Some(pending)) => pending,
        Ok(None) => return expired_page().into(),
        Err(error) => {
            tracing::error!(%error, "could not record a finished login");
            return unavailable_page().into();
        }
    };
    render(provider, transaction, &csrf, &pending, &user)
}

/// The consent form, parsed once. The decision is read as sent: an unknown one is
/// refused only after the CSRF token is checked.
pub(crate) struct ConsentForm {
    transaction: TransactionId,
    csrf: Zeroizing<String>,
    decision: Option<Decision>,
}

#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Deny,
}

impl ConsentForm {
    /// Refuses a form posted from another origin than the issuer's, then reads it.
    pub(crate) fn parse(
        parts: &Parts,
        body: &[u8],
        issuer_origin: &str,
    ) -> Result<ConsentForm, ErrorPage> {
        if let Some(origin) = parts.headers.get(ORIGIN)
            && origin.as_bytes() != issuer_origin.as_bytes()
        {
            return Err(refused_page("The form was not sent from this site."));
        }
        let invalid = || bad_request_page("The consent form is not valid.");
        if !form::is_form(&parts.headers) {
            return Err(invalid());
        }
        let Ok(params) = Params::parse(body) else {
            return Err(invalid());
        };
        let (Ok(Some(tx)), Ok(Some(csrf)), Ok(Some(decision))) =
            (params.get("tx"), params.get("csrf"), params.get("decision"))
        else {
            return Err(invalid());
        };
        let Some(transaction) = TransactionId::parse(tx) else {
            return Err(invalid());
        };
        let decision = match decision {
            "approve" => Some(Decision::Approve),
            "deny" => Some(Decision::Deny),
            _ => None,
        };
        Ok(ConsentForm {
            transaction,
            csrf: Zeroizing::new(csrf.to_owned()),
            decision,
        })
    }
}

/// `POST /consent`.
pub(crate) async fn submit(
    provider: &ProviderState,
    form: &ConsentForm,
    now: u64,
) -> BrowserAnswer {
    let transaction = &form.transaction;
    let key = PendingKey::for_transaction(transaction);
    let pending = match provider.store().pending(key, now).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return expired_page().into(),
        Err(error) => {
            tracing::error!(%error, "could not read a pending authorization");
            return unavailable_page().into();
        }
    };
    let PendingStatus::AwaitingConsent { user, consent_csrf } = &pending.status else {
        return expired_page().into();
    };
    if !consent_csrf.matches(&form.csrf) {
        return refused_page("The consent form has expired or was not sent from this site.").into();
    }
    match form.decision {
        Some(Decision::Approve) => approve(provider, key, &pending, user, now).await,
        Some(Decision::Deny) => deny(provider, key, &pending, now).await,
        None => bad_request_page("The consent form is not valid.").into(),
    }
}

async fn approve(
    provider: &ProviderState,
    key: PendingKey,
    pending: &PendingAuthorization,
    user: &AuthenticatedUser,
    now: u64,
) -> BrowserAnswer {
    let Ok(code) = Secret::generate(provider.rng()) else {
        return unavailable_page().into();
    };
    let mut record = AuthorizationCodeRecord::new(
        pending.client_id.clone(),
        pending.redirect_uri.clone(),
        Some(pending.code_challenge.clone()),
        pending.scope.clone(),
        pending.resources.clone(),
        user.subject.clone(),
        user.auth_time,
        now,
        now.saturating_add(provider.config().lifetimes.code.as_secs()),
    );
    record.nonce = pending.nonce.clone();
    record.claims = released_claims(&pending.scope, user);
    record.login = Some(GrantLogin::of(user));
    match provider
        .store()
        .complete_consent(key, Some((code.to_hash(), record)), now)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return expired_page().into(),
        Err(error) => {
            tracing::error!(%error, "could not store an authorization code");
            return unavailable_page().into();
        }
    }
    audit::record(&AuditEvent::CodeIssued {
        client_id: pending.client_id.as_str(),
        subject: user.subject.as_str(),
        scope: pending.scope.as_str(),
    });
    let mut params = vec![("code", code.expose_secret())];
    if let Some(state) = &pending.state {
        params.push(("state", state));
    }
    params.push(("iss", provider.config().issuer.as_str()));
    BrowserAnswer::Redirect {
        status: StatusCode::SEE_OTHER,
        location: redirect_location(&pending.redirect_uri, &params),
    }
}

async fn deny(
    provider: &ProviderState,
    key: PendingKey,
    pending: &PendingAuthorization,
    now: u64,
) -> BrowserAnswer {
    match provider.store().complete_consent(key, None, now).await {
        Ok(Some(_)) => error_redirect(
            &provider.config().issuer,
            &pending.redirect_uri,
            pending.state.as_deref(),
            OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
            StatusCode::SEE_OTHER,
        ),
        Ok(None) => expired_page().into(),
        Err(error) => {
            tracing::error!(%error, "could not record a denial");
            unavailable_page().into()
        }
    }
}

/// What the grant may release: a verified email with `email`, the name with `profile`.
pub(crate) fn released_claims(scope: &Scope, user: &AuthenticatedUser) -> ReleasedClaims {
    let email = user
        .email
        .clone()
        .filter(|_| user.email_verified && scope.contains("email"));
    let name = user.name.clone().filter(|_| scope.contains("profile"));
    ReleasedClaims::new(email, name)
}

fn render(
    provider: &ProviderState,
    transaction: &TransactionId,
    csrf: &Secret,
    pending: &PendingAuthorization,
    user: &AuthenticatedUser,
) -> BrowserAnswer {
    let client = pending.client_name.as_str();
    let destination = Destination::of(&pending.redirect_uri);
    let host = destination.label.as_str();
    let email = user.email.as_deref().filter(|_| user.email_verified);
    let self_registered = matches!(
        pending.client_kind,
        ClientKind::Dynamic | ClientKind::MetadataDocument
    );
    let body = maud::html! {
        h1 { "Allow " (client) " to use your account?" }
        @if let Some(email) = email {
            p.muted { "Signed in as " (email) }
        }
        p { "If you allow it, you will be sent to " strong { (host) } "." }
        @if destination.loopback {
            p.error {
                "That is a program on this computer. Continue only if you just started it."
            }
        }
        @if self_registered {
            p.error {
                "This application registered itself: its name is its own claim. \
                 Continue only if you trust " strong { (host) } "."
            }
        }
        @if pending.client_kind == ClientKind::MetadataDocument {
            p.muted { "Client: " code { (pending.client_id.as_str()) } }
        }
        p { (client) " will be able to:" }
        ul {
            @for token in pending.scope.iter() {
                li { (describe_scope(provider, token)) }
            }
        }
        p { "For use with:" }
        ul {
            @for resource in &pending.resources {
                li { code { (resource.as_str()) } }
            }
        }
        form method="post" action=(provider.paths().consent) {
            input type="hidden" name="tx" value=(transaction.as_str());
            input type="hidden" name="csrf" value=(csrf.expose_secret());
            button.primary type="submit" name="decision" value="approve" { "Allow" }
            button.secondary type="submit" name="decision" value="deny" { "Deny" }
        }
    };
    let mut page = html::page(StatusCode::OK, "Allow access?", &body);
    let headers = page.headers_mut();
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {}; \
         frame-ancestors 'none'; base-uri 'none'",
        destination.csp_source
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    BrowserAnswer::Page(page)
}

/// The consent page's words for a scope.
fn describe_scope(provider: &ProviderState, token: &str) -> String {
    match token {
        "openid" => "Confirm who you are (a stable user id)".to_owned(),
        "profile" => "See your name".to_owned(),
        "email" => "See your email address".to_owned(),
        "offline_access" => "Keep access while you are not using it".to_owned(),
        other => provider
            .config()
            .scopes
            .iter()
            .find(|s| s.name() == other)
            .map_or_else(|| other.to_owned(), |s| s.description().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_and_scoped_claims_are_released() {
        let mut user = AuthenticatedUser::new(
            crate::types::Subject::parse("u").unwrap(),
            0,
            crate::authn::LoginMethod::Password,
        );
        user.email = Some("a@example.com".to_owned());
        user.name = Some("A".to_owned());
        let all = Scope::parse("openid email profile").unwrap();
        assert_eq!(released_claims(&all, &user).email, None, "unverified");
        user.email_verified = true;
        assert_eq!(
            released_claims(&all, &user),
            ReleasedClaims::new(Some("a@example.com".to_owned()), Some("A".to_owned()))
        );
        let none = Scope::parse("openid").unwrap();
        assert_eq!(released_claims(&none, &user), ReleasedClaims::default());
    }
}
