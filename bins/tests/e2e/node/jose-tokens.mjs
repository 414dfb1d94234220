// jose (an independent JOSE implementation) against our tokens and our mcp-server:
// verifies access and ID tokens issued by our oidc-server against its JWKS, then signs
// hostile tokens that mcp-server must refuse with 401 and a Bearer challenge.
//
// Env: E2E_ISSUER, E2E_RESOURCE (the MCP endpoint, the access tokens' audience),
// E2E_OTHER_RESOURCE (another resource our provider issues tokens for), E2E_USERNAME,
// E2E_PASSWORD, E2E_SIGNING_KEY_PEM and E2E_SIGNING_KID (our provider's current signing
// key, read from its store by the Rust driver, so that forged claims carry a valid
// signature and each refusal is for the claim under test).

import { strict as assert } from 'node:assert';
import { createPublicKey } from 'node:crypto';

import {
  SignJWT, calculateJwkThumbprint, createRemoteJWKSet, decodeProtectedHeader, exportJWK,
  generateKeyPair, importPKCS8, jwtVerify,
} from 'jose';

import { decodePart, env, main, verified } from './lib.mjs';
import { authorize, registerClient } from './rp.mjs';

const b64 = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

await main(async () => {
  const issuer = env('E2E_ISSUER');
  const resource = env('E2E_RESOURCE');
  const otherResource = env('E2E_OTHER_RESOURCE');
  const kid = env('E2E_SIGNING_KID');
  const ourKey = await importPKCS8(env('E2E_SIGNING_KEY_PEM'), 'RS256', { extractable: true });
  const login = { username: env('E2E_USERNAME'), password: env('E2E_PASSWORD') };

  const config = await registerClient(issuer, 'client_secret_basic', 'e2e jose');
  const clientId = config.clientMetadata().client_id;
  const { tokens } = await authorize(config, { scope: 'openid email memories:read memories:write', resource, ...login });
  assert.ok(tokens, 'tokens for the MCP resource');
  const other = await authorize(config, { scope: 'openid memories:read', resource: otherResource, ...login });
  assert.ok(other.tokens, 'tokens for the other resource');

  // 1. jose verifies what we issue, against the published JWKS.
  const jwksUri = new URL(config.serverMetadata().jwks_uri);
  const jwks = createRemoteJWKSet(jwksUri);
  const access = await jwtVerify(tokens.access_token, jwks, {
    issuer, audience: resource, typ: 'at+jwt', algorithms: ['RS256'], requiredClaims: ['sub', 'exp', 'iat', 'jti', 'client_id'],
  });
  assert.equal(access.protectedHeader.kid, kid, 'the access token is signed with the key from the store');
  assert.equal(access.payload.client_id, clientId, 'access token client_id');
  assert.ok(access.payload.scope.split(' ').includes('memories:write'), 'access token scope');
  verified('jose verified an access token: RS256, typ at+jwt, iss, aud = the MCP resource, against createRemoteJWKSet', {
    kid: access.protectedHeader.kid, aud: access.payload.aud, scope: access.payload.scope,
  });
  const id = await jwtVerify(tokens.id_token, jwks, { issuer, audience: clientId, algorithms: ['RS256'], requiredClaims: ['sub', 'exp', 'iat', 'nonce'] });
  assert.notEqual(id.protectedHeader.typ, 'at+jwt', 'an ID token is not typed as an access token');
  assert.equal(id.payload.sub, access.payload.sub, 'same subject');
  verified('jose verified an ID token: RS256, iss, aud = client_id', { typ: id.protectedHeader.typ ?? null });
  const publicKey = createPublicKey(env('E2E_SIGNING_KEY_PEM'));
  const publicJwk = await exportJWK(publicKey);
  assert.equal(await calculateJwkThumbprint(publicJwk), kid, 'kid is the RFC 7638 thumbprint of the key');
  const published = await (await fetch(jwksUri)).json();
  const entry = published.keys.find((k) => k.kid === kid);
  assert.ok(entry, 'the signing key is in the JWKS');
  assert.equal(entry.n, publicJwk.n, 'the JWKS entry is the signing key');
  assert.ok(published.keys.every((k) => !('d' in k) && !('p' in k)), 'the JWKS has no private parts');
  verified('the JWKS publishes the signing key (kid = RFC 7638 thumbprint) and no private parts', { keys: published.keys.length });

  // 2. mcp-server accepts good tokens and refuses hostile ones.
  const initialize = {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'e2e-jose', version: '1' } },
  };
  async function callMcp(token) {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const response = await fetch(resource, { method: 'POST', headers, body: JSON.stringify(initialize) });
    const body = await response.text();
    return { status: response.status, challenge: response.headers.get('www-authenticate'), body };
  }

  const good = await callMcp(tokens.access_token);
  assert.equal(good.status, 200, `the real access token: ${good.status} ${good.body.slice(0, 300)}`);
  assert.ok(good.body.includes('"protocolVersion"'), 'an initialize result');

  const now = Math.floor(Date.now() / 1000);
  const claims = { ...access.payload, iat: now - 5, exp: now + 300, jti: `e2e-${now}` };
  const header = { alg: 'RS256', typ: 'at+jwt', kid };
  const sign = (payload, protectedHeader = header, key = ourKey, options = undefined) => new SignJWT(payload).setProtectedHeader(protectedHeader).sign(key, options);
  // The control: the same claims, freshly signed with our key, are accepted, so each forgery
  // below is refused for what it changes and not for the signature.
  const control = await callMcp(await sign(claims));
  assert.equal(control.status, 200, `a token re-signed with our key and good claims: ${control.status} ${control.body.slice(0, 300)}`);
  verified('mcp-server accepts the issued access token and a control token signed with our key', { status: control.status });

  const spki = publicKey.export({ type: 'spki', format: 'pem' });
  const { privateKey: strangerKey } = await generateKeyPair('RS256');
  const hostile = [
    ['no token', undefined],
    ['alg none (unsigned)', `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${b64(claims)}.`],
    ['HS256 keyed with our public key (PEM)', await sign(claims, { alg: 'HS256', typ: 'at+jwt', kid }, new TextEncoder().encode(spki))],
    ['HS256 keyed with our public JWK', await sign(claims, { alg: 'HS256', typ: 'at+jwt', kid }, new TextEncoder().encode(JSON.stringify(publicJwk)))],
    ['a key not in the JWKS, with our kid', await sign(claims, header, strangerKey)],
    ['a key not in the JWKS, with an unknown kid', await sign(claims, { ...header, kid: 'unknown-kid' }, strangerKey)],
    ['payload changed after signing', (() => {
      const [h, , s] = tokens.access_token.split('.');
      return `${h}.${b64({ ...access.payload, sub: 'someone-else' })}.${s}`;
    })()],
    ['wrong aud', await sign({ ...claims, aud: 'https://elsewhere.example/mcp' })],
    ['a real token for another resource', other.tokens.access_token],
    ['wrong iss', await sign({ ...claims, iss: 'http://127.0.0.1:1' })],
    ['expired an hour ago', await sign({ ...claims, iat: now - 7200, exp: now - 3600 })],
    ['not valid for another hour (nbf)', await sign({ ...claims, nbf: now + 3600 })],
    ['an ID token used as an access token', tokens.id_token],
    ['typ JWT with the access token claims', await sign(claims, { alg: 'RS256', typ: 'JWT', kid })],
    ['no typ', await sign(claims, { alg: 'RS256', kid })],
    ['unknown crit header', await sign(claims, { ...header, crit: ['urn:e2e:unknown'], 'urn:e2e:unknown': true }, ourKey, { crit: { 'urn:e2e:unknown': true } })],
    ['RS384 with our key', await sign(claims, { ...header, alg: 'RS384' }, await importPKCS8(env('E2E_SIGNING_KEY_PEM'), 'RS384'))],
  ];
  for (const [what, token] of hostile) {
    if (token !== undefined && what !== 'no token') {
      // Sanity: the forgery is what it claims to be.
      assert.equal(token.split('.').length, 3, `${what}: compact JWS`);
      decodeProtectedHeader(token);
    }
    const answer = await callMcp(token);
    assert.equal(answer.status, 401, `${what}: expected 401, got ${answer.status} ${answer.body.slice(0, 200)}`);
    assert.ok(answer.challenge?.startsWith('Bearer'), `${what}: WWW-Authenticate is a Bearer challenge: ${answer.challenge}`);
    assert.ok(answer.challenge.includes('resource_metadata='), `${what}: the challenge names the resource metadata (RFC 9728): ${answer.challenge}`);
    if (token !== undefined) {
      assert.ok(answer.challenge.includes('error="invalid_token"'), `${what}: error="invalid_token" (RFC 6750 §3.1): ${answer.challenge}`);
    }
    verified(`mcp-server refused: ${what}`, { status: answer.status, challenge: answer.challenge });
  }
  assert.equal(decodePart(tokens.id_token, 1).aud, clientId, 'sanity: the ID token is for the client');
});
