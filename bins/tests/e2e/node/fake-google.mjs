// A stand-in for Google: the certified `oidc-provider` on 127.0.0.1, with one client (our
// oidc-server), PKCE required, users with (un)verified emails, and a tiny sign-in page of
// its own (the email is the whole credential) so a headless agent can drive it.
//
// Env: FAKE_GOOGLE_PORT, FAKE_GOOGLE_CLIENT_ID, FAKE_GOOGLE_CLIENT_SECRET,
// FAKE_GOOGLE_REDIRECT_URI, FAKE_GOOGLE_ACCOUNTS (JSON list of {sub, email, email_verified, name}).
// Prints {"ready": issuer} once listening; runs until killed.

import { randomBytes } from 'node:crypto';
import http from 'node:http';

import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

import { env, report } from './lib.mjs';

const port = Number(env('FAKE_GOOGLE_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(env('FAKE_GOOGLE_ACCOUNTS'));

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'fake-google-1' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('FAKE_GOOGLE_CLIENT_ID'),
    client_secret: env('FAKE_GOOGLE_CLIENT_SECRET'),
    redirect_uris: [env('FAKE_GOOGLE_REDIRECT_URI')],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
  // Like Google: the email claims are in the ID token of the code flow.
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, sub) {
    const account = accounts.find((a) => a.sub === sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: account.email, email_verified: account.email_verified, name: account.name };
      },
    };
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>Fake Google error</title><p>${out.error}: ${out.error_description ?? ''}</p>`;
  },
});

for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error']) {
  provider.on(event, (_ctx, error) => console.error(`fake-google ${event}: ${error?.message} ${error?.error_description ?? ''}`));
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function signInPage(uid, message = '') {
  return `<!doctype html><html><head><title>Sign in - Fake Google</title></head><body>
<h1>Sign in with Fake Google</h1>${message ? `<p role="alert">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Email <input type="email" name="email" required></label>
<button type="submit">Next</button></form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    if (req.method === 'POST' && action === 'login') {
      const email = (await readForm(req)).get('email') ?? '';
      const account = accounts.find((a) => a.email === email);
      if (!account) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(signInPage(uid, 'No such account.'));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end(signInPage(uid));
    return;
  }
  if (prompt.name === 'consent') {
    // A first-party sign-in: Google asks nothing more, so grant what was asked.
    const grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  res.writeHead(501).end(`prompt ${prompt.name} not implemented`);
}

const app = provider.callback();
const server = http.createServer((req, res) => {
  const match = req.url.match(/^\/interaction\/([^/?]+)(?:\/(login))?/);
  if (!match) {
    app(req, res);
    return;
  }
  interaction(req, res, match[1], match[2]).catch((error) => {
    console.error('fake-google interaction failed:', error);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`interaction failed: ${error.message}`);
  });
});

server.listen(port, '127.0.0.1', () => report({ ready: issuer }));

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
