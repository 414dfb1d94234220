// Sign-in through the upstream: an openid-client RP asks our oidc-server for tokens, our
// server sends the user to the fake Google (oidc-provider), the user signs in there, our
// server takes them back at /login/oidc/callback, checks the email allow-list and shows
// its consent page.
//
// Env: E2E_ISSUER, E2E_RESOURCE, E2E_UPSTREAM_ISSUER, E2E_ALLOWED_EMAIL,
// E2E_NOT_ALLOWED_EMAIL, E2E_UNVERIFIED_EMAIL.

import { strict as assert } from 'node:assert';

import { HeadlessAgent, decodePart, env, main, verified } from './lib.mjs';
import { authorize, oidc, registerClient } from './rp.mjs';

await main(async () => {
  const issuer = env('E2E_ISSUER');
  const resource = env('E2E_RESOURCE');
  const upstream = env('E2E_UPSTREAM_ISSUER');
  const scope = 'openid email profile memories:read';

  const config = await registerClient(issuer, 'client_secret_basic', 'e2e upstream RP');
  const signInAs = (email, { agent, extra } = {}) => authorize(config, {
    scope,
    resource,
    extra,
    agent,
    fill: (form) => ('email' in form.fields ? { email } : undefined),
  });

  const allowed = env('E2E_ALLOWED_EMAIL');
  // One browser for this user: it keeps the upstream's session cookie between sign-ins.
  const browser = new HeadlessAgent();
  const first = await signInAs(allowed, { agent: browser });
  assert.ok(first.tokens, `the allowed user got no tokens; the walk ended on ${JSON.stringify(first.page)}`);
  const visited = first.pages.map((p) => new URL(p.url).origin);
  assert.ok(visited.includes(new URL(upstream).origin), `the walk never reached the upstream: ${JSON.stringify(first.pages)}`);
  assert.ok(first.pages.some((p) => p.title === 'Allow access?'), 'our consent page was shown after the upstream login');
  assert.equal(first.claims.email, allowed, 'ID token email');
  assert.equal(first.claims.email_verified, true, 'ID token email_verified');
  assert.equal(first.claims.iss, issuer, 'our ID token, not the upstream one');
  const access = decodePart(first.tokens.access_token, 1);
  assert.equal(access.aud, resource, 'access token audience');
  assert.equal(access.sub, first.claims.sub, 'access token subject');
  verified('signed in through the oidc-provider upstream and received our tokens', {
    pages: first.pages.map((p) => p.title),
    sub: first.claims.sub,
    email: first.claims.email,
  });

  const info = await oidc.fetchUserInfo(config, first.tokens.access_token, first.claims.sub);
  assert.equal(info.email, allowed, 'userinfo email');
  verified('userinfo of the federated user carries the upstream email', { email: info.email });

  const second = await signInAs(allowed, { agent: browser });
  assert.ok(second.tokens, 'second sign-in');
  assert.equal(second.claims.sub, first.claims.sub, 'the federated subject is stable across sign-ins');
  assert.deepEqual(second.pages.map((p) => p.title), ['Allow access?'], 'the upstream session signed the user in without a form');
  verified('the federated subject is stable across sign-ins; the upstream session is reused', {
    pages: second.pages.map((p) => p.title),
  });

  // prompt=login at our provider must reach the upstream, which then asks again.
  const forced = await signInAs(allowed, { agent: browser, extra: { prompt: 'login' } });
  assert.ok(forced.tokens, 'sign-in with prompt=login');
  assert.deepEqual(forced.pages.map((p) => p.title), ['Sign in - Fake Google', 'Allow access?'],
    'prompt=login made the upstream show its sign-in page again');
  verified('prompt=login is passed upstream: the upstream asked the user to sign in again', {
    pages: forced.pages.map((p) => p.title),
  });

  for (const [variable, title] of [['E2E_NOT_ALLOWED_EMAIL', 'Account not allowed'], ['E2E_UNVERIFIED_EMAIL', 'Email not verified']]) {
    const email = env(variable);
    const refused = await signInAs(email);
    assert.equal(refused.tokens, undefined, `${email} must not get tokens`);
    assert.ok(refused.page, `${email}: the walk must end on a page`);
    assert.equal(refused.page.status, 403, `${email}: status of ${refused.page.url}: ${refused.page.text}`);
    assert.ok(refused.page.text.includes(title), `${email}: page says "${refused.page.text}"`);
    assert.ok(new URL(refused.page.url).pathname.endsWith('/login/oidc/callback'), 'refused at our callback');
    verified(`refused ${email} at our callback`, { status: refused.page.status, title });
  }
});
