//! The token endpoint: a [`TokenRequest`] from an authenticated client answered with a
//! [`TokenResponse`]. The `authorization_code` grant is in [`code`], `refresh_token` in
//! [`refresh`]; tokens are minted by [`issuance`](crate::provider::issuance). No
//! implicit, no password grant.

mod code;
mod refresh;

use self::code::CodeRequest;
use self::refresh::RefreshRequest;
use crate::client::Client;
use crate::provider::errors::{ErrorCode, OAuthError};
use crate::provider::form::Params;
use crate::provider::issuance::TokenResponse;
use crate::provider::state::ProviderState;

/// A token request, parsed once from the form (after client authentication).
#[derive(Debug)]
pub(crate) enum TokenRequest<'a> {
    /// `grant_type=authorization_code`.
    AuthorizationCode(CodeRequest<'a>),
    /// `grant_type=refresh_token`.
    RefreshToken(RefreshRequest<'a>),
}

impl<'a> TokenRequest<'a> {
    /// Reads the grant and its parameters.
    pub(crate) fn parse(params: &'a Params) -> Result<TokenRequest<'a>, OAuthError> {
        match params.get("grant_type")? {
            Some("authorization_code") => {
                CodeRequest::parse(params).map(TokenRequest::AuthorizationCode)
            }
            Some("refresh_token") => RefreshRequest::parse(params).map(TokenRequest::RefreshToken),
            Some(_) => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "only authorization_code and refresh_token are supported",
            )),
            None => Err(OAuthError::invalid_request("grant_type is required")),
        }
    }
}

/// `POST /token` for an authenticated `client`.
pub(crate) async fn token(
    state: &ProviderState,
    client: &Client,
    request: &TokenRequest<'_>,
    now: u64,
) -> Result<TokenResponse, OAuthError> {
    match request {
        TokenRequest::AuthorizationCode(request) => code::grant(state, client, request, now).await,
        TokenRequest::RefreshToken(request) => refresh::grant(state, client, request, now).await,
    }
}
