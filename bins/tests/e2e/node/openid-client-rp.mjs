// openid-client (OpenID Certified relying party) against our oidc-server, once per client
// authentication method: discovery, dynamic registration, authorization code + PKCE S256
// with state and nonce, the RFC 9207 `iss` check, the token exchange, ID token validation
// (signature included), userinfo, introspection, refresh with rotation (and reuse
// detection), and revocation.
//
// Env: E2E_ISSUER, E2E_RESOURCE, E2E_USERNAME, E2E_PASSWORD, E2E_EMAIL.

import { strict as assert } from 'node:assert';

import { decodePart, env, main, verified } from './lib.mjs';
import { authorize, oidc, registerClient } from './rp.mjs';

/** Runs `call`, which must fail with the OAuth error `code`. */
async function expectOAuthError(call, code, what) {
  try {
    await call();
  } catch (error) {
    let actual = error?.error ?? error?.cause?.error;
    if (error?.code === 'OAUTH_WWW_AUTHENTICATE_CHALLENGE') {
      // RFC 6749 §5.2: a failed Basic authentication is a 401 with a challenge; the body
      // still names the error.
      assert.equal(error.response?.status, 401, `${what}: challenge status`);
      const body = await error.response.json().catch(() => ({}));
      actual = body.error ?? error.cause?.[0]?.parameters?.error;
    }
    assert.equal(actual, code, `${what}: expected OAuth error ${code}, got ${error?.name}: ${error?.message}`);
    return error;
  }
  throw new Error(`${what}: succeeded, expected OAuth error ${code}`);
}

await main(async () => {
  const issuer = env('E2E_ISSUER');
  const resource = env('E2E_RESOURCE');
  const username = env('E2E_USERNAME');
  const password = env('E2E_PASSWORD');
  const email = env('E2E_EMAIL');
  const scope = 'openid email profile offline_access memories:read memories:write';

  for (const method of ['client_secret_basic', 'client_secret_post', 'none']) {
    const config = await registerClient(issuer, method, `e2e openid-client (${method})`);
    const server = config.serverMetadata();
    assert.equal(server.issuer, issuer, 'discovered issuer');
    assert.ok(server.supportsPKCE('S256'), 'PKCE S256 advertised');
    assert.equal(server.authorization_response_iss_parameter_supported, true, 'RFC 9207 advertised');
    assert.ok(server.token_endpoint_auth_methods_supported.includes(method), `${method} advertised`);
    const clientId = config.clientMetadata().client_id;
    verified(`${method}: discovery and dynamic registration`, { client_id: clientId });

    const login = { scope, resource, username, password };
    const first = await authorize(config, login);
    assert.ok(first.tokens, `${method}: no tokens; the walk ended on ${JSON.stringify(first.page)}`);
    const { tokens, claims } = first;
    assert.equal(tokens.token_type.toLowerCase(), 'bearer', 'token_type');
    assert.ok(tokens.expires_in > 0, 'expires_in');
    assert.equal(claims.iss, issuer, 'ID token iss');
    assert.equal(claims.aud, clientId, 'ID token aud');
    assert.equal(claims.email, email, 'ID token email');
    assert.ok(claims.sub.length > 0, 'ID token sub');
    assert.equal(decodePart(tokens.id_token, 0).alg, 'RS256', 'ID token alg');
    const access = decodePart(tokens.access_token, 1);
    assert.equal(decodePart(tokens.access_token, 0).typ, 'at+jwt', 'access token typ');
    assert.equal(access.aud, resource, 'access token aud is the resource (RFC 8707)');
    assert.equal(access.client_id, clientId, 'access token client_id');
    assert.ok(tokens.refresh_token, 'a refresh token was issued');
    verified(`${method}: authorization code + PKCE S256, state, nonce, iss (RFC 9207), token exchange, ID token signature and claims`, {
      pages: first.pages.map((p) => p.title),
      scope: tokens.scope,
    });

    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.sub, claims.sub, 'userinfo sub');
    assert.equal(info.email, email, 'userinfo email');
    verified(`${method}: userinfo`, { email: info.email });

    if (method !== 'none') {
      const introspected = await oidc.tokenIntrospection(config, tokens.access_token);
      assert.equal(introspected.active, true, 'introspection of a live access token');
      assert.equal(introspected.sub, claims.sub, 'introspected sub');
      verified(`${method}: introspection`, { active: introspected.active });
    }

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, { resource });
    assert.ok(refreshed.refresh_token, 'refresh returns a new refresh token');
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'the refresh token rotated');
    assert.notEqual(refreshed.access_token, tokens.access_token, 'a new access token');
    assert.equal(decodePart(refreshed.access_token, 1).aud, resource, 'refreshed access token aud');
    const afterRefresh = await oidc.fetchUserInfo(config, refreshed.access_token, claims.sub);
    assert.equal(afterRefresh.sub, claims.sub, 'userinfo with the refreshed access token');
    await expectOAuthError(() => oidc.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant', 'reusing the old refresh token');
    verified(`${method}: refresh rotates the refresh token and the old one then fails with invalid_grant`);
    // Reuse of a rotated token revokes the whole family (the grant).
    await expectOAuthError(() => oidc.refreshTokenGrant(config, refreshed.refresh_token), 'invalid_grant', 'the rotated token after reuse detection');
    verified(`${method}: reuse detection revoked the newer refresh token too`);

    const second = await authorize(config, login);
    assert.ok(second.tokens, `${method}: second authorization`);
    await oidc.tokenRevocation(config, second.tokens.refresh_token);
    await expectOAuthError(() => oidc.refreshTokenGrant(config, second.tokens.refresh_token), 'invalid_grant', 'refreshing a revoked token');
    let userinfoAfterRevocation;
    try {
      await oidc.fetchUserInfo(config, second.tokens.access_token, claims.sub);
      userinfoAfterRevocation = 'accepted';
    } catch (error) {
      userinfoAfterRevocation = error?.status ?? error?.cause?.status ?? error?.name;
    }
    assert.equal(userinfoAfterRevocation, 401, 'userinfo refuses an access token of a revoked grant');
    verified(`${method}: revocation (RFC 7009) kills the refresh token and the grant's access token`);

    const third = await authorize(config, login);
    assert.ok(third.tokens, `${method}: third authorization`);
    await oidc.tokenRevocation(config, third.tokens.access_token, { token_type_hint: 'access_token' });
    let revokedAccess;
    try {
      await oidc.fetchUserInfo(config, third.tokens.access_token, claims.sub);
      revokedAccess = 'accepted';
    } catch (error) {
      revokedAccess = error?.status ?? error?.cause?.status ?? error?.name;
    }
    assert.equal(revokedAccess, 401, 'userinfo refuses a revoked access token');
    verified(`${method}: revoking an access token (RFC 7009, token_type_hint) makes userinfo refuse it`);
  }

  // max_age (OIDC Core §3.1.2.1): the ID token must carry a recent auth_time.
  const aged = await registerClient(issuer, 'client_secret_basic', 'e2e max_age');
  const withMaxAge = await authorize(aged, {
    scope: 'openid email', resource, username, password, extra: { max_age: '300' }, checks: { maxAge: 300 },
  });
  assert.ok(withMaxAge.tokens, 'authorization with max_age');
  assert.ok(Math.abs(withMaxAge.claims.auth_time - Date.now() / 1000) < 120, 'auth_time is the sign-in just made');
  verified('max_age: the ID token carries auth_time and passes openid-client\'s maxAge check', {
    auth_time: withMaxAge.claims.auth_time,
  });

  const confidential = await registerClient(issuer, 'client_secret_basic', 'e2e wrong secret');
  const metadata = confidential.clientMetadata();
  const wrong = await oidc.discovery(new URL(issuer), metadata.client_id, metadata, oidc.ClientSecretBasic('not-the-secret'), {
    execute: [oidc.allowInsecureRequests],
  });
  const live = await authorize(confidential, { scope, resource, username, password });
  assert.ok(live.tokens, 'authorization for the wrong-secret check');
  await expectOAuthError(() => oidc.refreshTokenGrant(wrong, live.tokens.refresh_token), 'invalid_client', 'a wrong client secret');
  verified('a wrong client secret is refused with invalid_client');
});
