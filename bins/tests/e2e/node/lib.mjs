// Shared helpers of the Node peers: JSON-line reports for the Rust driver, a cookie-keeping
// headless HTTP agent that walks redirects and submits HTML forms, and the login + consent
// walk through our provider's pages.

import { strict as assert } from 'node:assert';

/** Prints one JSON line on stdout; the Rust driver parses these. */
export function report(fields) {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}

/** Reports a passed check: `peer` did `what`, with optional details. */
export function verified(what, details = {}) {
  report({ verified: what, ...details });
}

/**
 * Runs `body`; any exception prints a clear message and exits non-zero, and so does running
 * longer than `timeoutMs` (keep it below the Rust driver's timeout for the script).
 */
export async function main(body, { timeoutMs = 240_000 } = {}) {
  const timer = setTimeout(() => {
    console.error(`peer script timed out after ${timeoutMs / 1000} s`);
    process.exit(3);
  }, timeoutMs);
  timer.unref();
  try {
    await body();
    report({ done: true });
    process.exit(0);
  } catch (error) {
    console.error(`FAILED: ${error?.stack ?? error}`);
    if (error?.cause) console.error('cause:', error.cause);
    report({ failed: String(error?.message ?? error) });
    process.exit(1);
  }
}

/**
 * Chromium's flags for the browser tests. Without them, its background connections fail
 * (or hang) on a closed network.
 */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** The browser tests' viewports: a desktop and a phone. */
export const VIEWPORTS = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
};

/** A required environment variable. */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

/** Asserts `response` has `status`, showing the body when it does not. */
export async function expectStatus(response, status, what) {
  if (response.status !== status) {
    const body = await response.text().catch(() => '');
    throw new Error(`${what}: expected HTTP ${status}, got ${response.status}: ${body.slice(0, 500)}`);
  }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#47': '/' };

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
    const lower = name.toLowerCase();
    if (ENTITIES[lower] !== undefined) return ENTITIES[lower];
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return whole;
  });
}

function attributes(tag) {
  const attrs = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/**
 * The forms of an HTML page: `{ action, method, fields, buttons }` with `action` resolved
 * against `base`, `fields` the named inputs' values and `buttons` the named submit buttons.
 */
export function parseForms(html, base) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1]);
    const fields = {};
    const inputs = [];
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]);
      inputs.push(a);
      if (a.name && a.type !== 'submit') fields[a.name] = a.value ?? '';
    }
    const buttons = [];
    for (const button of m[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      const a = attributes(button[1]);
      buttons.push({ name: a.name, value: a.value ?? '', label: stripTags(button[2]) });
    }
    forms.push({
      action: new URL(attrs.action ?? '', base).href,
      method: (attrs.method ?? 'get').toUpperCase(),
      fields,
      inputs,
      buttons,
    });
  }
  return forms;
}

/** The visible text of an HTML fragment, whitespace collapsed. */
export function stripTags(html) {
  return decodeEntities(html.replace(/<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]+>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * A browser-less user agent: keeps cookies per host, never follows redirects by itself,
 * and sends `Origin` on form posts as a browser does.
 */
export class HeadlessAgent {
  constructor() {
    this.jar = new Map();
  }

  cookieHeader(url) {
    const cookies = this.jar.get(url.host);
    if (!cookies || cookies.size === 0) return undefined;
    return [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  remember(url, response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (!this.jar.has(url.host)) this.jar.set(url.host, new Map());
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a))
        || attrs.some((a) => /^\s*expires\s*=.*1970/i.test(a));
      if (expired || value === '') this.jar.get(url.host).delete(name);
      else this.jar.get(url.host).set(name, value);
    }
  }

  /** One request; returns `{ status, url, location, html, headers }`. */
  async request(target, { method = 'GET', form, origin } = {}) {
    const url = new URL(target);
    const headers = { 'user-agent': 'memory-stack-e2e/1', accept: 'text/html' };
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
      if (origin) headers.origin = origin;
    }
    const response = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.remember(url, response);
    const location = response.headers.get('location');
    const html = await response.text();
    return {
      status: response.status,
      url: url.href,
      location: location ? new URL(location, url).href : undefined,
      html,
      headers: response.headers,
    };
  }
}

/**
 * Walks an authorization request the way a person in a browser would: follows redirects,
 * fills the sign-in form our provider shows (username/password, via `fill`), approves (or
 * denies) the consent page, and stops at the first redirect to `redirectUri`.
 *
 * `fill(form, page)` returns the fields to post for a form it recognises, or undefined.
 * Returns `{ callback: URL, pages }` or, when the walk ends on a page without a form it can
 * handle, `{ page: { status, url, text }, pages }`.
 */
export async function walkAuthorization(authorizationUrl, {
  redirectUri, fill = () => undefined, username, password, decision = 'approve', agent = new HeadlessAgent(),
}) {
  const pages = [];
  let next = { url: authorizationUrl.toString(), method: 'GET' };
  for (let hop = 0; hop < 25; hop += 1) {
    const response = await agent.request(next.url, next);
    if (response.status >= 300 && response.status < 400 && response.location) {
      if (response.location.startsWith(redirectUri)) {
        return { callback: new URL(response.location), pages };
      }
      next = { url: response.location, method: 'GET' };
      continue;
    }
    const forms = parseForms(response.html, response.url);
    const title = (response.html.match(/<title>([^<]*)<\/title>/i) ?? [])[1] ?? '';
    pages.push({ status: response.status, url: response.url, title });
    const origin = new URL(response.url).origin;
    const login = forms.find((f) => 'password' in f.fields && 'csrf' in f.fields);
    if (login && username !== undefined) {
      assert.equal(login.method, 'POST', 'the sign-in form posts');
      assert.ok(login.fields.csrf.length >= 20, 'the sign-in form carries a CSRF token');
      next = {
        url: login.action,
        method: 'POST',
        origin,
        form: { ...login.fields, username, password },
      };
      continue;
    }
    const consent = forms.find((f) => f.buttons.some((b) => b.name === 'decision'));
    if (consent) {
      assert.equal(consent.method, 'POST', 'the consent form posts');
      assert.ok(consent.fields.csrf?.length >= 20, 'the consent form carries a CSRF token');
      next = {
        url: consent.action,
        method: 'POST',
        origin,
        form: { ...consent.fields, decision },
      };
      continue;
    }
    const filled = forms
      .map((form) => ({ form, fields: fill(form, response) }))
      .find(({ fields }) => fields !== undefined);
    if (filled) {
      const { form, fields } = filled;
      next = { url: form.action, method: form.method, origin, form: { ...form.fields, ...fields } };
      continue;
    }
    return { page: { status: response.status, url: response.url, text: stripTags(response.html) }, pages };
  }
  throw new Error(`too many hops walking ${authorizationUrl}`);
}

/** Base64url-decodes a JWT part to an object. */
export function decodePart(jwt, index) {
  return JSON.parse(Buffer.from(jwt.split('.')[index], 'base64url').toString('utf8'));
}
