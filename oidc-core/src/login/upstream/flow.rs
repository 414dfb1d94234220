//! The upstream login as a state machine, without I/O: [`UpstreamFlow`] builds the
//! redirect to the upstream and the state entry to keep, reads the callback against the
//! entry taken back, builds the token request (an [`http::Request`]) and reads its
//! [`http::Response`]. The driver ([`Upstream`](super::Upstream)) does the storing, the
//! sending and the ID token verification in between.

use aws_lc_rs::rand::SecureRandom;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, REFERRER_POLICY};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use url::form_urlencoded;
use zeroize::{Zeroize as _, Zeroizing};

use super::config::{MAX_CLAIM_BYTES, UpstreamConfig, UpstreamError, UpstreamFlavor, check_config};
use super::metadata::UpstreamMetadata;
use super::refusal::Refusal;
use crate::audit::{self, AuditEvent};
use crate::authn::{AuthenticatedUser, LoginOutcome, LoginRequest, TransactionId};
use crate::html;
use crate::login::params::{self, Params};
use crate::outbound::OutboundError;
use crate::pkce::{CodeVerifier, S256};
use crate::secret::Secret;

/// One upstream login's protocol: configuration and metadata checked once, then pure
/// functions from (input, stored state, `now`) to (output, state to store) or a
/// [`Refusal`].
pub(super) struct UpstreamFlow {
    pub(super) name: String,
    pub(super) label: String,
    pub(super) config: UpstreamConfig,
    pub(super) metadata: UpstreamMetadata,
    pub(super) path_prefix: String,
    pub(super) callback_path: String,
    pub(super) callback_url: String,
    token_auth: TokenAuth,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenAuth {
    Basic,
    Post,
}

/// The random values a login start needs: the upstream `state` (256 bits, single use),
/// the `nonce` and the PKCE verifier.
pub(super) struct LoginSecrets {
    pub(super) state: Secret,
    pub(super) nonce: Secret,
    pub(super) verifier: CodeVerifier,
}

impl LoginSecrets {
    /// Fresh secrets from `rng`.
    pub(super) fn generate(rng: &dyn SecureRandom) -> Result<LoginSecrets, Refusal> {
        Ok(LoginSecrets {
            state: Secret::generate(rng).map_err(|_| Refusal::Internal("random"))?,
            nonce: Secret::generate(rng).map_err(|_| Refusal::Internal("random"))?,
            verifier: CodeVerifier::generate(rng).map_err(|_| Refusal::Internal("random"))?,
        })
    }
}

/// A started login: the entry to keep in the state store until `expires_at`, and the
/// redirect to send the browser.
pub(super) struct Started {
    pub(super) key: String,
    pub(super) value: Vec<u8>,
    pub(super) expires_at: u64,
    pub(super) redirect: Response<Bytes>,
}

/// A callback matched to its started login: the code to redeem.
pub(super) struct Resumed<'a> {
    pub(super) transaction: TransactionId,
    pub(super) pending: PendingLogin,
    pub(super) code: &'a str,
    pub(super) verifier: CodeVerifier,
}

impl UpstreamFlow {
    /// Checks `config` and `metadata` and settles how to authenticate at the token
    /// endpoint.
    pub(super) fn new(
        config: UpstreamConfig,
        metadata: UpstreamMetadata,
    ) -> Result<UpstreamFlow, UpstreamError> {
        check_config(&config)?;
        if metadata.issuer != config.issuer {
            return Err(UpstreamError::Config(
                "metadata is for another issuer".into(),
            ));
        }
        let methods = &metadata.token_endpoint_auth_methods;
        let token_auth = if methods.iter().any(|m| m == "client_secret_basic") {
            TokenAuth::Basic
        } else if methods.iter().any(|m| m == "client_secret_post") {
            TokenAuth::Post
        } else {
            return Err(UpstreamError::Discovery(
                "the token endpoint supports neither client_secret_basic nor client_secret_post"
                    .into(),
            ));
        };
        Ok(UpstreamFlow {
            name: config.name().to_owned(),
            label: config.label(),
            path_prefix: config.path_prefix(),
            callback_path: config.callback_path(),
            callback_url: config.callback_url(),
            config,
            metadata,
            token_auth,
        })
    }

    /// Starts a login: the entry `{transaction, nonce, verifier}` to store under a hash of
    /// the state, and a 303 to the upstream's authorization endpoint with
    /// `code_challenge_method=S256` spelled out.
    pub(super) fn start(
        &self,
        request: &LoginRequest,
        secrets: &LoginSecrets,
        now: u64,
    ) -> Result<Started, Refusal> {
        let LoginSecrets {
            state,
            nonce,
            verifier,
        } = secrets;
        let pending = PendingLogin {
            transaction: request.transaction.as_str().to_owned(),
            nonce: nonce.expose_secret().to_owned(),
            verifier: verifier.secret().to_owned(),
            created: now,
        };
        let value = params::encode(&pending).ok_or(Refusal::Internal("encode"))?;
        let key = params::store_key(&self.name, "state", state.expose_secret());
        let expires_at = now.saturating_add(self.config.state_ttl.as_secs());

        let mut url = url::Url::parse(&self.metadata.authorization_endpoint)
            .map_err(|_| Refusal::Internal("authorization endpoint"))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &self.callback_url)
                .append_pair("scope", self.config.scopes.as_str())
                .append_pair("state", state.expose_secret())
                .append_pair("nonce", nonce.expose_secret())
                .append_pair("code_challenge", &verifier.challenge().as_base64url())
                .append_pair("code_challenge_method", S256);
            match self.config.flavor {
                UpstreamFlavor::Google => {
                    query
                        .append_pair("access_type", "online")
                        .append_pair("prompt", "select_account");
                    if request.force_login {
                        query.append_pair("max_age", "0");
                    }
                    if let [domain] = self.config.hosted_domains.as_slice() {
                        query.append_pair("hd", domain);
                    }
                }
                UpstreamFlavor::Generic => {
                    if request.force_login {
                        query.append_pair("prompt", "login");
                    }
                }
            }
            if let Some(hint) = request
                .login_hint
                .as_deref()
                .filter(|h| !h.is_empty() && h.len() <= MAX_CLAIM_BYTES)
            {
                query.append_pair("login_hint", hint);
            }
        }
        let mut location = HeaderValue::from_str(url.as_str())
            .map_err(|_| Refusal::Internal("authorization url"))?;
        // It carries the upstream `state` and `nonce`.
        location.set_sensitive(true);
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::SEE_OTHER;
        let headers = response.headers_mut();
        headers.insert(LOCATION, location);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        Ok(Started {
            key,
            value,
            expires_at,
            redirect: response,
        })
    }

    /// The answer to a request at the callback path that is not a callback: 404 for
    /// another path, 405 for another method; `None` for a callback.
    pub(super) fn reject_route(&self, request: &Request<Bytes>) -> Option<Response<Bytes>> {
        // The provider may serve under its issuer's path: match the end of the path.
        if !request.uri().path().ends_with(&self.callback_path) {
            return Some(html::error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here.",
            ));
        }
        if request.method() != Method::GET {
            return Some(html::error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "The sign-in callback only accepts GET.",
            ));
        }
        None
    }

    /// The callback's query parameters, and the state store key its `state` names.
    pub(super) fn callback_params(
        &self,
        request: &Request<Bytes>,
    ) -> Result<(Params, String), Refusal> {
        let query = request.uri().query().unwrap_or_default();
        let params = Params::parse(query.as_bytes()).ok_or(Refusal::BadRequest)?;
        let state = params.get("state").ok_or(Refusal::UnknownState)?;
        let key = params::store_key(&self.name, "state", state);
        Ok((params, key))
    }

    /// Matches the callback's `params` with the entry taken from the store under their
    /// state (`None`: unknown, expired or already used), checks the RFC 9207 `iss`
    /// parameter (mix-up defence) and the upstream's answer, and returns the code.
    pub(super) fn resume<'a>(
        &self,
        params: &'a Params,
        stored: Option<Vec<u8>>,
        now: u64,
    ) -> Result<Resumed<'a>, Refusal> {
        let stored = stored.ok_or(Refusal::UnknownState)?;
        let pending: PendingLogin = params::decode(stored).ok_or(Refusal::UnknownState)?;
        // The store expires entries; this also holds if a store keeps them too long.
        if now
            > pending
                .created
                .saturating_add(self.config.state_ttl.as_secs())
        {
            return Err(Refusal::UnknownState);
        }
        let transaction =
            TransactionId::parse(&pending.transaction).ok_or(Refusal::UnknownState)?;

        // RFC 9207: the response names the issuer that sent it (exact comparison).
        match params.get("iss") {
            Some(iss) if iss != self.config.issuer.as_str() => return Err(Refusal::IssuerMismatch),
            None if self.metadata.iss_parameter_supported => return Err(Refusal::IssuerMismatch),
            _ => {}
        }
        if params.get("error").is_some() {
            return Err(Refusal::UpstreamDenied);
        }
        let code = params.get("code").ok_or(Refusal::MissingCode)?;
        let verifier = CodeVerifier::parse(&pending.verifier).map_err(|_| Refusal::UnknownState)?;
        Ok(Resumed {
            transaction,
            pending,
            code,
            verifier,
        })
    }

    /// The request redeeming `code` at the token endpoint, with the PKCE verifier and the
    /// client secret (HTTP Basic per RFC 6749 §2.3.1, or in the form). The `Authorization`
    /// header is marked sensitive and the intermediate encodings are zeroed.
    pub(super) fn token_request(
        &self,
        code: &str,
        verifier: &CodeVerifier,
    ) -> Result<Request<Bytes>, Refusal> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.callback_url.as_str()),
            ("code_verifier", verifier.secret()),
        ];
        let secret = self.config.client_secret.expose_secret();
        let basic = match self.token_auth {
            TokenAuth::Basic => Some((self.config.client_id.as_str(), secret)),
            TokenAuth::Post => {
                form.push(("client_id", self.config.client_id.as_str()));
                form.push(("client_secret", secret));
                None
            }
        };
        let body = Zeroizing::new(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&form)
                .finish(),
        );
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.metadata.token_endpoint.as_str())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(Bytes::copy_from_slice(body.as_bytes()))
            .map_err(|_| Refusal::Outbound(OutboundError::InvalidUrl))?;
        if let Some((id, secret)) = basic {
            let credentials =
                Zeroizing::new(format!("{}:{}", form_component(id), form_component(secret)));
            let encoded =
                Zeroizing::new(format!("Basic {}", STANDARD.encode(credentials.as_bytes())));
            let mut value = HeaderValue::from_str(&encoded).map_err(|_| {
                Refusal::Outbound(OutboundError::Transport(
                    "invalid client credentials".into(),
                ))
            })?;
            value.set_sensitive(true);
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        Ok(request)
    }

    /// Reads the token endpoint's answer: the ID token. The access token in it is never
    /// read.
    pub(super) fn read_token_response(
        &self,
        response: &Response<Bytes>,
    ) -> Result<Zeroizing<String>, Refusal> {
        if response.status() != StatusCode::OK {
            #[derive(Deserialize)]
            struct ErrorBody {
                error: Option<String>,
            }
            let error = serde_json::from_slice::<ErrorBody>(response.body())
                .ok()
                .and_then(|b| b.error)
                .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_graphic()))
                .unwrap_or_default();
            tracing::info!(
                method = %self.name,
                status = response.status().as_u16(),
                error,
                "upstream token endpoint refused the code"
            );
            return Err(Refusal::TokenEndpoint);
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(response.body()).map_err(|_| Refusal::TokenEndpoint)?;
        Ok(Zeroizing::new(
            parsed.id_token.ok_or(Refusal::TokenEndpoint)?,
        ))
    }

    /// The outcome of a login that completed: audited, handed to the provider.
    pub(super) fn authenticated(
        &self,
        transaction: TransactionId,
        user: AuthenticatedUser,
    ) -> LoginOutcome {
        audit::record(&AuditEvent::LoginSucceeded {
            method: &self.name,
            subject: user.subject.as_str(),
        });
        LoginOutcome::Authenticated { transaction, user }
    }

    /// The error page for `refusal`, logged and audited (never with a token, code or
    /// email).
    pub(super) fn refuse(&self, refusal: &Refusal) -> Response<Bytes> {
        let reason = refusal.reason();
        if let Refusal::InvalidIdToken(detail) = refusal {
            tracing::info!(method = %self.name, detail, "upstream id token refused");
        }
        if let Refusal::Internal(what) = refusal {
            tracing::error!(method = %self.name, what, "upstream login failed internally");
        }
        if let Refusal::Outbound(error) = refusal {
            tracing::warn!(method = %self.name, %error, "upstream token request failed");
        }
        audit::record(&AuditEvent::LoginRefused {
            method: &self.name,
            reason,
        });
        let (status, title, message) = refusal.page();
        html::error_page(status, title, message)
    }
}

fn form_component(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// What [`Upstream`] keeps in the state store between `start` and the callback. The
/// nonce and verifier are zeroed on drop.
#[derive(Serialize, Deserialize)]
pub(super) struct PendingLogin {
    #[serde(rename = "t")]
    pub(super) transaction: String,
    #[serde(rename = "n")]
    pub(super) nonce: String,
    #[serde(rename = "v")]
    pub(super) verifier: String,
    #[serde(rename = "c")]
    pub(super) created: u64,
}

impl Drop for PendingLogin {
    fn drop(&mut self) {
        self.nonce.zeroize();
        self.verifier.zeroize();
    }
}

#[cfg(test)]
mod tests;
