// A real browser (Debian's headless Chromium, driven by playwright-core) signs in through
// our password login page and consent page and lands on the client's redirect URI with a
// code, on a desktop and on a phone-sized viewport; a bad redirect_uri shows our error
// page and goes nowhere. Screenshots of each page go to E2E_SCREENSHOT_DIR.
//
// Env: E2E_ISSUER, E2E_RESOURCE, E2E_USERNAME, E2E_PASSWORD, E2E_CHROMIUM,
// E2E_SCREENSHOT_DIR.

import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import {
  CHROMIUM_ARGS, VIEWPORTS, env, expectStatus, main, verified,
} from './lib.mjs';

await main(async () => {
  const issuer = env('E2E_ISSUER');
  const resource = env('E2E_RESOURCE');
  const username = env('E2E_USERNAME');
  const password = env('E2E_PASSWORD');
  const executablePath = env('E2E_CHROMIUM');
  const shots = env('E2E_SCREENSHOT_DIR');
  mkdirSync(shots, { recursive: true });
  // The client app's callback: a tiny server on a free port that records where the browser
  // landed (Playwright's routing does not see a navigation that arrives by redirect).
  const arrivals = [];
  const app = createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (url.pathname !== '/browser/callback') {
      res.writeHead(404).end(); // the browser also asks for /favicon.ico
      return;
    }
    arrivals.push(url.href);
    res.writeHead(200, { 'content-type': 'text/html' }).end('<title>Callback</title><p>The app got its code.</p>');
  });
  await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
  const port = app.address().port;
  const redirectUri = `http://127.0.0.1:${port}/browser/callback`;

  const registration = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'E2E Browser App',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
  });
  await expectStatus(registration, 201, 'dynamic registration');
  const { client_id: clientId } = await registration.json();

  for (const [name, device] of Object.entries(VIEWPORTS)) {
    const profile = mkdtempSync(join(tmpdir(), 'e2e-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 60_000, ...device,
    });
    try {
      const page = context.pages()[0] ?? await context.newPage();
      page.setDefaultTimeout(30_000);
      const problems = [];
      page.on('console', (message) => {
        // The wrong-password and bad-redirect pages are 4xx documents on purpose (their
        // statuses are asserted below); anything else, a CSP violation above all, is a bug.
        const expected = /^Failed to load resource: the server responded with a status of 4\d\d/;
        if (message.type() === 'error' && !expected.test(message.text())) problems.push(message.text());
      });
      page.on('pageerror', (error) => problems.push(String(error)));
      arrivals.length = 0;

      const verifier = randomBytes(32).toString('base64url');
      const state = randomBytes(16).toString('base64url');
      const authorize = new URL(`${issuer}/authorize`);
      for (const [k, v] of Object.entries({
        response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid email memories:read',
        state, code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
        resource,
      })) authorize.searchParams.set(k, v);

      const first = await page.goto(authorize.href);
      assert.equal(first.status(), 200, 'the login page');
      await page.locator('input[name=username]').waitFor();
      assert.equal(await page.title(), 'Sign in', 'login page title');
      await page.screenshot({ path: join(shots, `login-${name}.png`), fullPage: true });

      await page.fill('input[name=username]', username);
      await page.fill('input[name=password]', 'not the password');
      await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
      await page.locator('[role=alert]').waitFor();
      assert.match(await page.locator('[role=alert]').innerText(), /Invalid username or password/, 'a wrong password is refused on the page');
      assert.equal(await page.inputValue('input[name=username]'), username, 'the username is kept');
      await page.screenshot({ path: join(shots, `login-error-${name}.png`), fullPage: true });

      await page.fill('input[name=password]', password);
      await Promise.all([page.waitForURL(/\/login\/password$/), page.click('button[type=submit]')]);
      await page.locator('button[value=approve]').waitFor();
      assert.equal(await page.title(), 'Allow access?', 'consent page title');
      const heading = await page.locator('h1').innerText();
      assert.ok(heading.includes('E2E Browser App'), `the consent page names the client: ${heading}`);
      const consentText = await page.locator('body').innerText();
      assert.ok(consentText.includes(`127.0.0.1:${port}`), 'the consent page shows where the browser will go');
      assert.ok(consentText.includes(resource), 'the consent page shows the resource');
      await page.screenshot({ path: join(shots, `consent-${name}.png`), fullPage: true });

      await Promise.all([page.waitForURL((url) => url.href.startsWith(redirectUri)), page.click('button[value=approve]')]);
      assert.equal(arrivals.length, 1, 'the browser reached the redirect URI once');
      assert.equal(page.url(), arrivals[0], 'and the page shows it');
      const callback = new URL(arrivals[0]);
      assert.equal(callback.searchParams.get('state'), state, 'state');
      assert.equal(callback.searchParams.get('iss'), issuer, 'iss (RFC 9207)');
      const code = callback.searchParams.get('code');
      assert.ok(code && code.length >= 32, 'a code');

      const token = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: clientId, code_verifier: verifier, resource,
        }),
      });
      await expectStatus(token, 200, 'redeeming the code the browser brought back');
      const tokens = await token.json();
      assert.ok(tokens.access_token && tokens.id_token, 'tokens');

      // A redirect_uri that was not registered: an error page on our origin, no redirect.
      const bad = new URL(authorize);
      bad.searchParams.set('redirect_uri', 'https://attacker.example/steal');
      const refused = await page.goto(bad.href);
      assert.equal(refused.status(), 400, 'a bad redirect_uri gets a 400 page');
      assert.equal(new URL(page.url()).origin, new URL(issuer).origin, 'the browser stays on our origin');
      assert.equal(await page.locator('form').count(), 0, 'the error page offers no form');
      const errorText = await page.locator('body').innerText();
      await page.screenshot({ path: join(shots, `error-redirect-uri-${name}.png`), fullPage: true });

      const layout = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
      assert.ok(layout.scroll <= layout.client, `no horizontal scrolling on ${name}: ${JSON.stringify(layout)}`);
      assert.deepEqual(problems, [], `console errors or CSP violations on ${name}`);
      verified(`chromium (${name}): login page, wrong password, consent, redirect with code, token exchange, bad redirect_uri page`, {
        viewport: device.viewport,
        error_page: errorText.slice(0, 120),
        screenshots: ['login', 'login-error', 'consent', 'error-redirect-uri'].map((s) => `${s}-${name}.png`),
      });
    } catch (error) {
      const page = context.pages()[0];
      if (page) await page.screenshot({ path: join(shots, `failure-${name}.png`), fullPage: true }).catch(() => {});
      throw new Error(`${name}: ${error.message} (screenshot: failure-${name}.png)`, { cause: error });
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    }
  }
  app.close();
});
