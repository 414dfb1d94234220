// The official MCP TypeScript SDK client against our two servers over Streamable HTTP, with
// the SDK's own OAuth flow (its OAuthClientProvider interface): the first connect gets a
// 401, the SDK discovers the protected resource and authorization server metadata,
// registers a public client, builds the PKCE authorization URL and hands it to
// `redirectToAuthorization`, where a headless user signs in and consents; the app then
// checks state and iss and gives the code to `transport.finishAuth`, and reconnects.
//
// Env: E2E_MCP_URL, E2E_ISSUER, E2E_USERNAME, E2E_PASSWORD.

import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { env, main, verified, walkAuthorization } from './lib.mjs';

const REDIRECT_URI = 'http://127.0.0.1:9/typescript/callback';

/** An OAuthClientProvider whose "browser" is the headless walk over our pages. */
class HeadlessOAuthProvider {
  constructor(username, password) {
    this.username = username;
    this.password = password;
    this.authorizationUrls = [];
    this.walks = [];
  }

  get redirectUrl() { return REDIRECT_URI; }

  get clientMetadata() {
    return {
      client_name: 'e2e typescript sdk',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this.expectedState = randomBytes(24).toString('base64url');
    return this.expectedState;
  }

  clientInformation() { return this.client; }

  saveClientInformation(information) { this.client = information; }

  tokens() { return this.savedTokens; }

  saveTokens(tokens) { this.savedTokens = tokens; }

  saveCodeVerifier(verifier) { this.verifier = verifier; }

  codeVerifier() { return this.verifier; }

  async redirectToAuthorization(url) {
    this.authorizationUrls.push(url.href);
    this.walks.push(await walkAuthorization(url, {
      redirectUri: REDIRECT_URI, username: this.username, password: this.password,
    }));
  }
}

function parse(result, tool) {
  assert.ok(!result.isError, `${tool} failed: ${JSON.stringify(result.content)}`);
  const texts = result.content.filter((c) => c.type === 'text');
  assert.equal(texts.length, 1, `${tool}: one text content item`);
  const value = JSON.parse(texts[0].text);
  if (result.structuredContent !== undefined) {
    assert.deepEqual(result.structuredContent, value, `${tool}: structuredContent equals the JSON text`);
  }
  return value;
}

await main(async () => {
  const mcpUrl = new URL(env('E2E_MCP_URL'));
  const issuer = env('E2E_ISSUER');
  const provider = new HeadlessOAuthProvider(env('E2E_USERNAME'), env('E2E_PASSWORD'));
  const clientInfo = { name: 'e2e-typescript-sdk', version: '1.0.0' };

  const first = new Client(clientInfo);
  let unauthorized;
  try {
    await first.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  } catch (error) {
    unauthorized = error;
  }
  assert.ok(unauthorized instanceof UnauthorizedError, `the first connect must need authorization, got ${unauthorized}`);
  assert.equal(provider.authorizationUrls.length, 1, 'the SDK asked for one authorization');
  const authorization = new URL(provider.authorizationUrls[0]);
  assert.equal(authorization.origin, new URL(issuer).origin, 'authorized at our issuer');
  assert.equal(authorization.searchParams.get('code_challenge_method'), 'S256', 'PKCE S256');
  assert.equal(authorization.searchParams.get('resource'), mcpUrl.href, 'RFC 8707 resource');
  assert.ok(provider.client?.client_id, 'registered dynamically');
  const walk = provider.walks[0];
  assert.ok(walk.callback, `the walk ended on ${JSON.stringify(walk.page)}`);
  assert.equal(walk.callback.searchParams.get('state'), provider.expectedState, 'state round trip');
  assert.equal(walk.callback.searchParams.get('iss'), issuer, 'RFC 9207 iss');

  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await transport.finishAuth(walk.callback.searchParams.get('code'));
  assert.ok(provider.savedTokens?.access_token, 'tokens saved');
  verified('typescript mcp SDK: OAuth through its auth provider (401, RFC 9728, RFC 8414, DCR, PKCE, resource) and finishAuth', {
    client_id: provider.client.client_id,
    scope: provider.savedTokens.scope ?? null,
    pages: walk.pages.map((p) => p.title),
  });

  const client = new Client(clientInfo);
  await client.connect(transport);
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const needed of ['add_memories', 'search', 'fetch', 'search_memory']) {
    assert.ok(names.includes(needed), `tool ${needed} in ${names}`);
  }
  const marker = `ts${Date.now() % 1e9}`;
  const text = `The TypeScript SDK remembers ${marker}.`;
  const added = parse(await client.callTool({ name: 'add_memories', arguments: { text } }), 'add_memories');
  assert.equal(added.memory, text, 'add_memories echoes the memory');
  const found = parse(await client.callTool({ name: 'search', arguments: { query: marker } }), 'search');
  const hit = found.results.find((r) => r.id === added.id);
  assert.ok(hit, `search finds the memory: ${JSON.stringify(found)}`);
  assert.deepEqual(Object.keys(hit).sort(), ['id', 'title', 'url'], 'ChatGPT search result shape');
  const fetched = parse(await client.callTool({ name: 'fetch', arguments: { id: added.id } }), 'fetch');
  assert.equal(fetched.text, text, 'fetch returns the text');
  assert.equal(fetched.url, hit.url, 'fetch and search agree on the url');
  const searched = parse(await client.callTool({ name: 'search_memory', arguments: { query: marker } }), 'search_memory');
  assert.ok(searched.results.some((r) => r.id === added.id && r.memory === text), 'search_memory finds it');
  verified('typescript mcp SDK: add_memories, search, fetch, search_memory over Streamable HTTP', {
    protocol_version: transport.protocolVersion ?? null,
    session: transport.sessionId ? 'stateful' : 'none',
    memory_id: added.id,
  });
  await transport.terminateSession().catch(() => {});
  await client.close();
});
