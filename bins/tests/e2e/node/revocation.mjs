// Revocation reaching the resource server: openid-client signs in through our oidc-server,
// uses the access token at mcp-server, then revokes the grant three ways (RFC 7009
// revocation of the refresh token, refresh-token reuse, RFC 7009 revocation of the access
// token). After each, it asks mcp-server every 250 ms until the still-unexpired access token
// is refused, and reports how long that took. Meanwhile a token of a grant that was not
// revoked must keep working.
//
// Env: E2E_ISSUER, E2E_RESOURCE, E2E_MCP_URL, E2E_USERNAME, E2E_PASSWORD.

import { strict as assert } from 'node:assert';

import { decodePart, env, main, verified } from './lib.mjs';
import { authorize, oidc, registerClient } from './rp.mjs';

/** Refusal must come well within this (the default bound is 30 s). */
const GIVE_UP_MS = 90_000;

await main(async () => {
  const issuer = env('E2E_ISSUER');
  const resource = env('E2E_RESOURCE');
  const memories = `${env('E2E_MCP_URL').replace(/\/mcp$/, '')}/api/v1/memories/`;
  const login = {
    scope: 'openid offline_access memories:read memories:write',
    resource,
    username: env('E2E_USERNAME'),
    password: env('E2E_PASSWORD'),
  };
  const config = await registerClient(issuer, 'client_secret_basic', 'e2e revocation');
  const list = (token) => fetch(memories, { headers: { authorization: `Bearer ${token}` } });

  /** Signs in and checks mcp-server takes the new access token. */
  async function signIn(what) {
    const { tokens } = await authorize(config, login);
    assert.ok(tokens, `${what}: sign-in`);
    const status = decodePart(tokens.access_token, 1).status?.status_list;
    assert.ok(status && Number.isInteger(status.idx) && status.uri.startsWith(issuer), `${what}: status claim ${JSON.stringify(status)}`);
    assert.equal((await list(tokens.access_token)).status, 200, `${what}: mcp-server accepts the token`);
    return { tokens, status };
  }

  /** Polls mcp-server until `token` is refused; returns the latency and the challenge. */
  async function refusedWithin(token, since, what) {
    for (;;) {
      const response = await list(token);
      if (response.status === 401) {
        return { latency_ms: Date.now() - since, challenge: response.headers.get('www-authenticate') };
      }
      assert.equal(response.status, 200, `${what}: unexpected status while waiting`);
      assert.ok(Date.now() - since < GIVE_UP_MS, `${what}: still accepted after ${GIVE_UP_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  const bystander = await signIn('bystander');

  const revoked = await signIn('refresh token revocation');
  let since = Date.now();
  await oidc.tokenRevocation(config, revoked.tokens.refresh_token);
  const first = await refusedWithin(revoked.tokens.access_token, since, 'refresh token revocation');
  verified('revoking the refresh token (RFC 7009): mcp-server refuses the grant\'s access token', first);

  const reused = await signIn('refresh token reuse');
  const rotated = await oidc.refreshTokenGrant(config, reused.tokens.refresh_token, { resource });
  assert.equal((await list(rotated.access_token)).status, 200, 'the refreshed access token works');
  since = Date.now();
  await assert.rejects(oidc.refreshTokenGrant(config, reused.tokens.refresh_token), 'reusing the old refresh token fails');
  const second = await refusedWithin(rotated.access_token, since, 'refresh token reuse');
  // Within the same bound, not at the same instant: behind a load balancer this request may
  // reach another mcp-server replica, whose status-list cache refreshes on its own schedule.
  const earlier = await refusedWithin(reused.tokens.access_token, since, 'the first access token of the reused family');
  verified('refresh-token reuse: mcp-server refuses every access token of the family',
    { ...second, first_token_latency_ms: earlier.latency_ms });

  const access = await signIn('access token revocation');
  since = Date.now();
  await oidc.tokenRevocation(config, access.tokens.access_token, { token_type_hint: 'access_token' });
  const third = await refusedWithin(access.tokens.access_token, since, 'access token revocation');
  verified('revoking the access token (RFC 7009): mcp-server refuses it', third);

  assert.equal((await list(bystander.tokens.access_token)).status, 200, 'a token of another grant keeps working');
  verified('a grant that was not revoked keeps working', { idx: bystander.status.idx });
});
