//! Signing in through the provider (authorization code with PKCE S256, `state` bound to
//! the browser by a cookie, `nonce` checked), the session cookie, and who is signed in on
//! each request.

use http::HeaderMap;
use http::HeaderValue;
use http::header::SET_COOKIE;

use super::directory::Unavailable;
use super::form::{self, Fields};
use super::oauth::{IdClaims, TokenResponse};
use super::pages::{Answer, Current, Pages, redirect};
use super::session::{self, Login, Session, Tokens};
use crate::auth::AccessClaims;
use crate::store::{MemoryStore, Owner};

/// Renew the access token this long before it expires.
const RENEW_BEFORE_SECS: u64 = 60;

impl<S: MemoryStore> Pages<S> {
    /// Starts a sign-in: remembers `state`, binds it to this browser with a cookie, and
    /// sends the browser to the provider.
    pub(super) async fn login(&self, query: &str) -> Answer {
        let query = Fields::parse(query.as_bytes());
        let next = form::safe_next(query.get("next"));
        let state = session::random_token();
        let nonce = session::random_token();
        let verifier = session::random_token();
        let binding = session::random_token();
        let url = match self
            .provider
            .authorization_url(&state, &nonce, &verifier)
            .await
        {
            Ok(url) => url,
            Err(error) => return self.provider_failed(&error),
        };
        let login = Login::new(binding.clone(), verifier, nonce, next);
        if self.sessions.start_login(&state, login).await.is_err() {
            return self.sessions_unavailable();
        }
        let mut response = redirect(&url);
        self.set_cookie(
            &mut response,
            self.login_cookie,
            &binding,
            session::LOGIN_LIFETIME.as_secs(),
        );
        response
    }

    /// The provider sent the browser back: check `state` and its browser, redeem the
    /// code, check the tokens, start a session.
    pub(super) async fn callback(&self, query: &str, headers: &HeaderMap) -> Answer {
        let query = Fields::parse(query.as_bytes());
        let login = match query.get("state") {
            Some(state) => match self.sessions.take_login(state).await {
                Ok(login) => login,
                Err(Unavailable) => return self.sessions_unavailable(),
            },
            None => None,
        };
        let bound = session::cookie(headers, self.login_cookie);
        let Some(login) = login.filter(|login| {
            bound.is_some_and(|cookie| session::same_secret(cookie, &login.binding))
        }) else {
            return self.sign_in_failed(
                "This sign-in link has expired or was started in another browser.",
            );
        };
        if let Some(error) = query.get("error") {
            let text = if error == "access_denied" {
                "You did not allow the memory page to sign you in."
            } else {
                "The sign-in server refused the sign-in."
            };
            return self.sign_in_failed(text);
        }
        let Some(code) = query.get("code") else {
            return self.sign_in_failed("The sign-in server sent no code.");
        };
        let tokens = match self.provider.exchange_code(code, &login.verifier).await {
            Ok(tokens) => tokens,
            Err(error) => return self.provider_failed(&error),
        };
        let Some((owner, expires_at)) = self.check_access_token(&tokens.access_token).await else {
            return self.sign_in_failed("The sign-in server's token was not valid here.");
        };
        let display_name = match tokens
            .id_token
            .as_deref()
            .map(|id_token| IdClaims::read(id_token, &self.config.client_id))
        {
            Some(Ok(claims))
                if claims.sub == owner.as_str()
                    && claims
                        .nonce
                        .as_deref()
                        .is_some_and(|nonce| session::same_secret(nonce, &login.nonce)) =>
            {
                claims.display_name()
            }
            _ => return self.sign_in_failed("The sign-in server's ID token did not match."),
        };
        tracing::info!(subject = owner.as_str(), "signed in to the memory page");
        // Names for the apps in access logs; the page works without them.
        let granted = self
            .provider
            .granted_apps(&tokens.access_token)
            .await
            .unwrap_or_default();
        let created = self
            .sessions
            .create(
                owner,
                display_name,
                tokens_of(tokens, expires_at, None, self.unix_now()),
            )
            .await;
        let Ok((cookie, apps)) = created else {
            return self.sessions_unavailable();
        };
        Self::remember_names(&apps, &granted);
        let mut response = redirect(&login.next);
        self.set_cookie(
            &mut response,
            self.session_cookie,
            &cookie,
            self.sessions.lifetime().as_secs(),
        );
        self.set_cookie(&mut response, self.login_cookie, "", 0);
        response
    }

    pub(super) async fn logout(&self, current: &Current) -> Answer {
        if self.sessions.end(&current.session).await.is_err() {
            return self.sessions_unavailable();
        }
        let mut response = redirect("/app/login?signed_out=1");
        self.set_cookie(&mut response, self.session_cookie, "", 0);
        response
    }

    /// The signed-in person, after renewing their access token if it is about to
    /// expire and checking it as the API does (signature, audience, expiry, revocation).
    /// `Ok(None)`: nobody is signed in (no cookie, or its session ended).
    pub(super) async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Current>, Unavailable> {
        let Some(cookie) = session::cookie(headers, self.session_cookie) else {
            return Ok(None);
        };
        let Some(session) = self.sessions.get(cookie).await? else {
            return Ok(None);
        };
        let renew_by = self.unix_now() + RENEW_BEFORE_SECS;
        let renewed = self
            .sessions
            .fresh_access_token(
                &session,
                |tokens| tokens.access_expires_at <= renew_by,
                |refresh_token| self.renew(&session, refresh_token),
            )
            .await?;
        let Some(access_token) = renewed else {
            return Ok(None);
        };
        match self.check_access_token(&access_token).await {
            Some((owner, _)) if owner == session.owner => Ok(Some(Current {
                session,
                access_token,
            })),
            _ => {
                // Revoked (the person revoked this page's access) or no longer valid.
                self.sessions.end(&session).await?;
                Ok(None)
            }
        }
    }

    /// New tokens for `session` from its refresh token, if the provider gives them and
    /// they are still the same person's.
    async fn renew(&self, session: &Session, refresh_token: String) -> Option<Tokens> {
        let renewed = self.provider.refresh(&refresh_token).await.ok()?;
        let (owner, expires_at) = self.check_access_token(&renewed.access_token).await?;
        (owner == session.owner)
            .then(|| tokens_of(renewed, expires_at, Some(refresh_token), self.unix_now()))
    }

    /// The owner and expiry of a valid access token.
    pub(super) async fn check_access_token(&self, token: &str) -> Option<(Owner, u64)> {
        let verified = self.verifier.verify::<AccessClaims>(token).await.ok()?;
        let owner = Owner::new(verified.claims().sub.as_str()).ok()?;
        Some((owner, verified.expires_at()))
    }

    pub(super) fn set_cookie(&self, response: &mut Answer, name: &str, value: &str, max_age: u64) {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie =
            format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
}

/// `now`: the current Unix second.
fn tokens_of(
    tokens: TokenResponse,
    expires_at: u64,
    previous_refresh: Option<String>,
    now: u64,
) -> Tokens {
    Tokens {
        access_token: tokens.access_token,
        // A provider that does not rotate refresh tokens sends none back.
        refresh_token: tokens.refresh_token.or(previous_refresh),
        access_expires_at: tokens
            .expires_in
            .map_or(expires_at, |seconds| (now + seconds).min(expires_at)),
    }
}
