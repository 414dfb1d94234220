// openid-client (a certified relying party) against our oidc-server: dynamic registration
// and the authorization code flow with PKCE S256, state and nonce, the login and consent
// pages walked headlessly.

import { strict as assert } from 'node:assert';

import * as oidc from 'openid-client';

import { walkAuthorization } from './lib.mjs';

/** Where our provider sends the browser back to; nothing needs to listen there. */
export const REDIRECT_URI = 'http://127.0.0.1:9/e2e/callback';

/**
 * Registers a client (RFC 7591) with `tokenEndpointAuthMethod`, then discovers the provider
 * again with those credentials and returns an openid-client configuration that
 * authenticates that way, checks ID token signatures against the JWKS (non-repudiation
 * checks) and allows plain http (loopback only).
 */
export async function registerClient(issuer, tokenEndpointAuthMethod, clientName) {
  const registered = await oidc.dynamicClientRegistration(
    new URL(issuer),
    {
      client_name: clientName,
      redirect_uris: [REDIRECT_URI],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: tokenEndpointAuthMethod,
    },
    undefined,
    { execute: [oidc.allowInsecureRequests] },
  );
  const metadata = registered.clientMetadata();
  assert.equal(metadata.token_endpoint_auth_method, tokenEndpointAuthMethod, 'registered auth method');
  assert.deepEqual(metadata.redirect_uris, [REDIRECT_URI], 'registered redirect_uris');
  const auth = {
    client_secret_basic: () => oidc.ClientSecretBasic(metadata.client_secret),
    client_secret_post: () => oidc.ClientSecretPost(metadata.client_secret),
    none: () => oidc.None(),
  }[tokenEndpointAuthMethod]();
  if (tokenEndpointAuthMethod === 'none') {
    assert.equal(metadata.client_secret, undefined, 'a public client gets no secret');
  } else {
    assert.ok(metadata.client_secret?.length >= 32, 'a confidential client gets a long secret');
  }
  // A fresh discovery, as an RP configured with these credentials would start.
  const config = await oidc.discovery(new URL(issuer), metadata.client_id, metadata, auth, {
    execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks],
  });
  return config;
}

/**
 * One authorization: builds the URL (PKCE S256, state, nonce, resource, and any `extra`
 * parameters), walks the pages
 * with `walk` options, and when the walk reaches the redirect URI, redeems the code with
 * openid-client (which checks `state`, the RFC 9207 `iss`, the ID token and the nonce, and
 * any further `checks` such as `maxAge`).
 */
export async function authorize(config, { scope, resource, extra = {}, checks = {}, ...walk }) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const parameters = {
    redirect_uri: REDIRECT_URI,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  if (resource) parameters.resource = resource;
  Object.assign(parameters, extra);
  const url = oidc.buildAuthorizationUrl(config, parameters);
  const result = await walkAuthorization(url, { redirectUri: REDIRECT_URI, ...walk });
  if (!result.callback) return result;
  assert.equal(result.callback.searchParams.get('iss'), config.serverMetadata().issuer, 'RFC 9207 iss in the redirect');
  const tokens = await oidc.authorizationCodeGrant(
    config,
    result.callback,
    { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true, ...checks },
    resource ? { resource } : undefined,
  );
  return { ...result, tokens, claims: tokens.claims() };
}

export { oidc };
