// The memory page (mcp-server's `/app/`) in a real browser: Debian's headless Chromium driven
// by playwright-core, on a desktop and a phone viewport, against the one-command stack with
// two local users.
//
// For each viewport: Alice signs in to the page through the provider's login and consent
// pages; the official MCP TypeScript SDK (its own DCR client and grant, signed in as Alice)
// adds her memories and reads one with `fetch`. In the page she searches (the matched word
// in `<mark>`), opens the memory the SDK read and sees its access-log row, edits and saves a
// memory, deletes one, deletes two selected, exports all (a download in the documented JSON
// format), deletes everything with the typed confirmation, imports the export back (then
// again: all skipped), and revokes the SDK's access on the apps page: the SDK's next call is
// refused with 401 within 30 s. Bob, in his own browser context, sees none of her memories
// by list, search, direct URL, export or apps page, and his bulk action and revocation with
// her ids change nothing. Every state-changing POST from another origin (same-site and
// cross-site attacker pages that auto-submit a form, with Alice's real CSRF token) or from
// the page's own origin without the CSRF field is refused with 403 and changes nothing.
// Throughout: no console errors, no CSP violations, no failed subresources; axe-core on
// every page finds no serious or critical violation. Screenshots go to E2E_SCREENSHOT_DIR.
//
// Env: E2E_ISSUER, E2E_MCP_URL, E2E_USERNAME, E2E_PASSWORD, E2E_OTHER_USERNAME,
// E2E_OTHER_PASSWORD, E2E_CHROMIUM, E2E_SCREENSHOT_DIR.

import { strict as assert } from 'node:assert';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { chromium } from 'playwright-core';

import {
  CHROMIUM_ARGS, VIEWPORTS, env, main, verified, walkAuthorization,
} from './lib.mjs';

const AXE_PATH = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
/** How often the SDK retries after the revocation. */
const POLL_MS = 500;
/** The script gives up waiting for the refusal here; the Rust driver asserts 30 s. */
const GIVE_UP_MS = 60_000;
/** Bob's revocation attempt must have had this long to propagate before Alice's grant is
 * checked again (the bound a real revocation must meet). */
const PROPAGATION_MS = 30_000;
const SDK_REDIRECT_URI = 'http://127.0.0.1:9/memory-page-sdk/callback';
const EXPORT_FORMAT = 'mcp-api.memories';
const EXPORT_KEYS = ['app', 'categories', 'created_at', 'id', 'metadata', 'state', 'text', 'updated_at'];
/** A word only this viewport's memories hold, so the two runs never mix. */
const WORDS = { desktop: 'kumquat', phone: 'persimmon' };

/** Alice's memories for one viewport, by role in the scenario. */
function aliceTexts(word) {
  return {
    recipe: `Grandma's ${word} jam recipe uses cardamom and lemon zest.`, // read by the SDK, edited
    garden: `The ${word} tree in the garden needs water every Tuesday.`,
    dentist: `Dentist appointment moved to Friday; bring the ${word} voucher.`, // deleted alone
    bike: `The bike lock code is written on the ${word} crate in the shed.`, // deleted selected
    concert: `Concert tickets for the ${word} festival are in the blue drawer.`, // deleted selected
    library: `Return the ${word} cookbook to the library before March.`,
  };
}

/** The whole scenario on one viewport. */
async function scenario(run) {
  const {
    device, options, browser, issuer, mcpUrl, mcpBase, shots, work, attacker,
  } = run;
  const word = WORDS[device];
  const texts = aliceTexts(word);
  const screenshots = [];
  const axeResults = {};
  // What fails without breaking the scenario (a departure from the contract, an axe-core
  // violation, a console error): noted, the scenario goes on, and the run fails at its end
  // listing them all.
  const findings = [];
  const finding = (ok, what) => {
    if (!ok) findings.push(`${device}: ${what}`);
  };
  const problems = [];
  const layout = {};
  const a = await BrowserSession.open(browser, options, mcpBase, 'alice');
  let b;
  let sdk;
  try {
    // --- Alice signs in through the provider's pages. ---
    const signIn = await a.signIn(issuer, run.alice);
    verified(`${device}: alice signed in to ${mcpBase}/app/ through the login and consent pages`, signIn);

    // The axe pass runs in a context of its own that ignores the page's CSP (see axeCheck);
    // it shares Alice's session cookie. First, the proof that it has to: in a context that
    // keeps the CSP, injecting axe's script tag is refused.
    const injection = await inlineInjectionBlocked(browser, options, a, mcpBase);
    const axeContext = await browser.newContext({
      ...options, bypassCSP: true, storageState: await a.context.storageState(),
    });

    // --- The MCP TypeScript SDK, as Alice, adds her memories and reads one. ---
    sdk = await SdkSession.signIn(mcpUrl, issuer, run.alice, `e2e memory-page sdk (${device})`);
    const ids = {};
    for (const [role, text] of Object.entries(texts)) {
      const added = toolResult(await sdk.client.callTool({ name: 'add_memories', arguments: { text } }), 'add_memories');
      assert.equal(added.memory, text, 'add_memories echoes the text');
      ids[role] = added.id;
    }
    const fetched = toolResult(await sdk.client.callTool({ name: 'fetch', arguments: { id: ids.recipe } }), 'fetch');
    assert.equal(fetched.text, texts.recipe, 'the SDK reads the memory back');
    verified(`${device}: the MCP TypeScript SDK added 6 memories for alice and read one with fetch`, {
      client_id: sdk.clientId, pages: sdk.pages, memory_ids: ids,
    });
    const aliceIds = Object.values(ids);

    // --- The list. ---
    const { page } = a;
    await a.goto(`${mcpBase}/app/`);
    const listed = await listedIds(page);
    for (const [role, id] of Object.entries(ids)) assert.ok(listed.includes(id), `the list shows the ${role} memory ${id}: ${listed}`);
    for (const id of aliceIds) {
      assert.ok(await page.locator(`a[href="/app/memories/${id}"], a[href="${mcpBase}/app/memories/${id}"]`).count() > 0, `a link to memory ${id}`);
    }
    const csp = (await a.context.request.get(`${mcpBase}/app/`)).headers()['content-security-policy'] ?? '';
    checkCsp(csp, issuer);
    await a.capture('list', device, screenshots, layout);
    await axeCheck(axeContext, `${mcpBase}/app/`, 'list', axeResults);

    // --- Search: the matched word in <mark>. ---
    await page.getByRole('searchbox').or(page.locator('input[name=q]')).first().fill(word);
    await a.navigateBy(page.getByRole('button', { name: 'Search', exact: true }));
    assert.equal(new URL(page.url()).searchParams.get('q'), word, 'the search is in the URL');
    const found = await listedIds(page);
    for (const id of aliceIds) assert.ok(found.includes(id), `search for ${word} finds ${id}: ${found}`);
    const marks = await page.locator('mark').allInnerTexts();
    assert.ok(marks.length >= aliceIds.length, `one <mark> per hit at least: ${JSON.stringify(marks)}`);
    for (const mark of marks) assert.equal(mark.toLowerCase(), word, `<mark> holds the matched word: ${JSON.stringify(marks)}`);
    const narrow = `${mcpBase}/app/?q=${encodeURIComponent('cardamom')}`;
    await a.goto(narrow);
    // The engine also finds a hit's neighbours in time (memories added in one burst share
    // context), so the others may follow; the memory that holds the word comes first.
    const narrowFound = await listedIds(page);
    assert.equal(narrowFound[0], ids.recipe, `a word of one memory finds it first: ${narrowFound}`);
    const narrowMarks = await page.locator('mark').allInnerTexts();
    assert.ok(narrowMarks.length > 0 && narrowMarks.every((m) => m.toLowerCase() === 'cardamom'), `only the word is marked: ${JSON.stringify(narrowMarks)}`);
    await a.goto(`${mcpBase}/app/?q=${encodeURIComponent(word)}`);
    await a.capture('search', device, screenshots, layout);
    await axeCheck(axeContext, `${mcpBase}/app/?q=${encodeURIComponent(word)}`, 'search', axeResults);
    verified(`${device}: search marks the matched word`, { query: word, hits: found.length, marks: [...new Set(marks)] });

    // --- The memory the SDK read, with its access log. ---
    await a.navigateBy(page.locator(`a[href$="/app/memories/${ids.recipe}"]`).first());
    assert.equal(new URL(page.url()).pathname, `/app/memories/${ids.recipe}`, 'the link opens the memory');
    assert.equal(await page.getByLabel('Text', { exact: true }).inputValue(), texts.recipe, 'the Text field holds the memory');
    const logTable = page.locator('table').filter({ has: page.locator('th', { hasText: 'Through' }) });
    assert.equal(await logTable.count(), 1, 'one table with the access log (When, App, Through)');
    const headers = (await logTable.locator('th').allInnerTexts()).map((h) => h.trim());
    for (const h of ['When', 'App', 'Through']) assert.ok(headers.includes(h), `access log column ${h}: ${headers}`);
    assert.ok(await page.getByText('Access log').count() > 0, 'the table is titled "Access log"');
    const rows = await logTable.locator('tbody tr').allInnerTexts();
    const sdkRow = rows.find((r) => (r.includes(sdk.clientId) || r.includes(sdk.clientName)) && /fetch/.test(r));
    assert.ok(sdkRow, `an access-log row for the SDK's fetch (app ${sdk.clientId} or "${sdk.clientName}"): ${JSON.stringify(rows)}`);
    await a.capture('detail', device, screenshots, layout);
    await axeCheck(axeContext, `${mcpBase}/app/memories/${ids.recipe}`, 'detail', axeResults);
    verified(`${device}: the access log shows the SDK's read`, { row: sdkRow.replace(/\s+/g, ' ').trim(), rows: rows.length });

    // --- Edit and save. ---
    const edited = `Grandma's ${word} jam recipe uses cardamom, lemon zest and a pinch of salt.`;
    await page.getByLabel('Text', { exact: true }).fill(edited);
    const saved = await a.navigateBy(page.getByRole('button', { name: 'Save', exact: true }));
    const savedFlash = await flash(page);
    await a.goto(`${mcpBase}/app/memories/${ids.recipe}`);
    assert.equal(await page.getByLabel('Text', { exact: true }).inputValue(), edited, 'the saved text is shown after a reload');
    texts.recipe = edited;
    verified(`${device}: edited and saved a memory`, { post_status: saved, flash: savedFlash });

    // --- Delete one, from its page. ---
    await a.goto(`${mcpBase}/app/memories/${ids.dentist}`);
    const deleted = await a.navigateBy(page.getByRole('button', { name: 'Delete', exact: true }));
    const deletedFlash = await flash(page);
    assert.equal((await a.goto(`${mcpBase}/app/memories/${ids.dentist}`, 404)), 404, 'the deleted memory is gone (404)');
    await a.capture('not-found', device, screenshots, layout);
    await axeCheck(axeContext, `${mcpBase}/app/memories/${ids.dentist}`, 'not-found', axeResults, 404);
    await a.goto(`${mcpBase}/app/`);
    assert.ok(!(await listedIds(page)).includes(ids.dentist), 'and not in the list');
    verified(`${device}: deleted one memory`, { post_status: deleted, flash: deletedFlash });

    // --- Select two and "Delete selected". ---
    await page.locator(`input[name=ids][value="${ids.bike}"]`).check();
    await page.locator(`input[name=ids][value="${ids.concert}"]`).check();
    const bulk = await a.navigateBy(page.getByRole('button', { name: 'Delete selected', exact: true }));
    const bulkFlash = await flash(page);
    await a.goto(`${mcpBase}/app/`);
    const afterBulk = await listedIds(page);
    assert.ok(!afterBulk.includes(ids.bike) && !afterBulk.includes(ids.concert), `the two selected are gone: ${afterBulk}`);
    assert.ok(afterBulk.includes(ids.garden) && afterBulk.includes(ids.library), 'the others stay');
    verified(`${device}: deleted two selected memories`, { post_status: bulk, flash: bulkFlash });
    const kept = { recipe: ids.recipe, garden: ids.garden, library: ids.library };

    // --- Bob: his own browser, none of Alice's memories, his actions on her ids do nothing. ---
    b = await BrowserSession.open(browser, options, mcpBase, 'bob');
    const bobSignIn = await b.signIn(issuer, run.bob);
    const aliceBefore = await a.snapshot();
    const bobText = `Bob keeps his bicycle pump in the hallway cupboard (${device}).`;
    const bobFile = join(work, `bob-${device}.json`);
    writeFileSync(bobFile, JSON.stringify(exportDocument([{ text: bobText }])));
    await b.goto(`${mcpBase}/app/`);
    await b.page.locator('input[type=file][name=file]').setInputFiles(bobFile);
    await b.navigateBy(b.page.getByRole('button', { name: 'Import', exact: true }));
    await b.goto(`${mcpBase}/app/`);
    const bobListed = await listedIds(b.page);
    const bobPageText = await b.page.locator('body').innerText();
    assert.ok(bobPageText.includes(bobText), 'bob sees his own imported memory');
    assert.deepEqual(bobListed.filter((id) => aliceIds.includes(id)), [], "bob's list holds none of alice's ids");
    for (const text of Object.values(texts)) assert.ok(!bobPageText.includes(text), `bob's list does not show "${text}"`);
    await b.capture('bob-list', device, screenshots, layout);
    await b.goto(`${mcpBase}/app/?q=${encodeURIComponent(word)}`);
    const bobFound = await listedIds(b.page);
    assert.deepEqual(bobFound.filter((id) => aliceIds.includes(id)), [], `bob's search for ${word} finds none of alice's memories`);
    assert.equal(await b.page.locator('mark').count(), 0, `bob's search for ${word} marks nothing`);
    const direct = await b.goto(`${mcpBase}/app/memories/${ids.garden}`, 404);
    const bobExport = await b.exportJson();
    assert.equal(bobExport.format, EXPORT_FORMAT, "bob's export");
    assert.ok(bobExport.memories.some((m) => m.text === bobText), "bob's export holds his memory");
    assert.deepEqual(bobExport.memories.filter((m) => aliceIds.includes(m.id) || Object.values(texts).includes(m.text)), [], "bob's export holds none of alice's memories");
    await b.goto(`${mcpBase}/app/apps`);
    const bobApps = await b.page.locator('body').innerText();
    assert.ok(!bobApps.includes(sdk.clientId) && !bobApps.includes(sdk.clientName), "bob's apps page does not list alice's SDK client");
    assert.equal(await b.page.locator(`input[name=client_id][value="${sdk.clientId}"]`).count(), 0, "bob's apps page has no revoke form for it");
    verified(`${device}: bob sees none of alice's memories (list, search, direct URL, export, apps page)`, {
      pages: bobSignIn.pages, direct_url_status: direct, bob_memories: bobExport.memories.length,
    });

    await b.goto(`${mcpBase}/app/`);
    const bobCsrf = await b.page.locator('input[name=csrf]').first().inputValue();
    const bobBulk = {};
    for (const action of ['delete', 'archive']) {
      bobBulk[action] = (await b.post(`${mcpBase}/app/memories/bulk`, [
        ['csrf', bobCsrf], ['ids', kept.garden], ['ids', kept.library], ['action', action],
      ], undefined, true)).status();
    }
    const bobPostOnHers = (await b.post(`${mcpBase}/app/memories/${kept.garden}`, [
      ['csrf', bobCsrf], ['action', 'delete'],
    ], undefined, true)).status();
    const bobRevoke = (await b.post(`${mcpBase}/app/apps/revoke`, [['csrf', bobCsrf], ['client_id', sdk.clientId]], undefined, true)).status();
    const bobRevokedAt = Date.now();
    assert.deepEqual(await a.snapshot(), aliceBefore, "alice's memories are unchanged after bob's bulk actions and post on her ids");
    await a.goto(`${mcpBase}/app/apps`);
    assert.equal(await page.locator(`input[name=client_id][value="${sdk.clientId}"]`).count(), 1, "alice's apps page still offers to revoke the SDK's grant");
    toolResult(await sdk.client.callTool({ name: 'search', arguments: { query: word } }), 'search');
    verified(`${device}: bob's actions on alice's ids change nothing (bulk delete and archive, a post to her memory, revoking her SDK's client)`, {
      bulk_statuses: bobBulk, memory_post_status: bobPostOnHers, revoke_status: bobRevoke,
    });
    problems.push(...b.problems);
    await b.close();
    b = undefined;

    // --- CSRF: forms from other origins, or without the csrf field, are refused. ---
    await a.goto(`${mcpBase}/app/`);
    const csrf = await page.locator('input[name=csrf]').first().inputValue();
    assert.ok(csrf.length >= 16, 'the page carries a CSRF token');
    const planted = JSON.stringify(exportDocument([{ text: `Planted by a cross-site form (${device}).` }]));
    const targets = [
      { name: 'memory', url: `${mcpBase}/app/memories/${kept.garden}`, fields: [['action', 'delete']] },
      { name: 'bulk', url: `${mcpBase}/app/memories/bulk`, fields: [['ids', kept.garden], ['ids', kept.library], ['action', 'delete']] },
      { name: 'delete-all', url: `${mcpBase}/app/delete-all`, fields: [['confirm', 'DELETE']] },
      { name: 'import', url: `${mcpBase}/app/import`, fields: [], file: planted },
      { name: 'revoke', url: `${mcpBase}/app/apps/revoke`, fields: [['client_id', sdk.clientId]] },
      { name: 'logout', url: `${mcpBase}/app/logout`, fields: [] },
    ];
    const before = await a.snapshot();
    const refusals = [];
    // Same-site (another port of 127.0.0.1: the SameSite=Lax cookie is sent, so only the
    // Origin check stands) and cross-site (localhost): both with Alice's real CSRF token.
    for (const [from, origin] of [['same-site 127.0.0.1 origin', attacker.origin('127.0.0.1')], ['cross-site localhost origin', attacker.origin('localhost')]]) {
      for (const target of targets) {
        const response = await a.attackFrom(attacker, origin, target.url, [['csrf', csrf], ...target.fields], target.file);
        const location = response.headers().location;
        refusals.push({ from, action: target.name, status: response.status(), ...(location ? { location } : {}) });
      }
    }
    for (const target of targets) {
      await a.goto(`${mcpBase}/app/`);
      const response = await a.post(target.url, target.fields, target.file, true);
      refusals.push({ from: 'same origin without the csrf field', action: target.name, status: response.status() });
    }
    const accepted = refusals.filter((r) => r.status !== 403);
    const effects = {
      memories_unchanged: await a.snapshot().then((s) => JSON.stringify(s) === JSON.stringify(before), (e) => `export failed: ${e.message}`),
      still_signed_in: (await a.context.request.get(`${mcpBase}/app/`, { maxRedirects: 0 })).status() === 200,
      sdk_grant_kept: await page.goto(`${mcpBase}/app/apps`)
        .then(() => page.locator(`input[name=client_id][value="${sdk.clientId}"]`).count()).then((n) => n === 1),
    };
    assert.ok(
      Object.values(effects).every((e) => e === true),
      `forged posts change nothing: ${JSON.stringify(effects)}; statuses: ${JSON.stringify(refusals)}`,
    );
    finding(accepted.length === 0, `every forged post is refused with 403; these were not: ${JSON.stringify(accepted)}`);
    verified(`${device}: CSRF: forged posts from other origins and same-origin posts without the csrf field change nothing${accepted.length ? '' : ' and are refused with 403'}`, { refusals, effects });

    // --- Export all (JSON): a download in the documented format. ---
    await a.goto(`${mcpBase}/app/`);
    const exportLink = page.getByRole('link', { name: 'Export all (JSON)', exact: true })
      .or(page.getByRole('button', { name: 'Export all (JSON)', exact: true }));
    const [download] = await Promise.all([page.waitForEvent('download'), exportLink.first().click()]);
    const exportFile = join(work, `export-${device}.json`);
    await download.saveAs(exportFile);
    const exported = JSON.parse(readFileSync(exportFile, 'utf8'));
    checkExportFormat(exported);
    const exportedTexts = exported.memories.map((m) => m.text);
    for (const role of ['recipe', 'garden', 'library']) {
      const memory = exported.memories.find((m) => m.id === ids[role]);
      assert.ok(memory, `the export holds the ${role} memory`);
      assert.equal(memory.text, texts[role], `with its current text (${role})`);
    }
    assert.equal(exported.memories.find((m) => m.id === ids.garden).app, sdk.clientId, 'the app that wrote it is its client_id');
    for (const role of ['dentist', 'bike', 'concert']) assert.ok(!exported.memories.some((m) => m.id === ids[role]), `the deleted ${role} memory is not exported`);
    assert.deepEqual(exported.memories.map((m) => m.id).sort(), before.map((m) => m.id).sort(), 'the export holds every memory of alice, nothing else');
    verified(`${device}: exported all memories as JSON`, {
      filename: download.suggestedFilename(), memories: exported.memories.length, keys: Object.keys(exported.memories[0]).sort(),
    });

    // --- Delete everything, with the typed confirmation. ---
    await a.goto(`${mcpBase}/app/`);
    await a.navigateBy(page.getByRole('link', { name: /^Delete everything/ }));
    assert.equal(new URL(page.url()).pathname, '/app/delete-all', 'the list links to the confirmation page');
    await a.capture('delete-all', device, screenshots, layout);
    await axeCheck(axeContext, `${mcpBase}/app/delete-all`, 'delete-all', axeResults);
    // A wrong confirmation: the browser's form validation may stop it; the server must too.
    await page.locator('input[name=confirm]').fill('delete');
    const wrong = {};
    if (await page.locator('input[name=confirm]').evaluate((input) => input.checkValidity())) {
      wrong.button = await a.navigateBy(page.getByRole('button', { name: 'Delete everything', exact: true }), [400, 403, 422]);
      await a.goto(`${mcpBase}/app/delete-all`);
    } else {
      wrong.button = 'stopped by the form validation';
    }
    const deleteAllCsrf = await page.locator('form[action$="/app/delete-all"] input[name=csrf]').inputValue();
    wrong.post = (await a.post(`${mcpBase}/app/delete-all`, [['csrf', deleteAllCsrf], ['confirm', 'delete']], undefined, true)).status();
    assert.equal((await a.snapshot()).length, exported.memories.length, `a wrong confirmation ("delete") deletes nothing: ${JSON.stringify(wrong)}`);
    await a.goto(`${mcpBase}/app/delete-all`);
    await page.locator('input[name=confirm]').fill('DELETE');
    const everything = await a.navigateBy(page.getByRole('button', { name: 'Delete everything', exact: true }));
    const everythingFlash = await flash(page);
    await a.goto(`${mcpBase}/app/`);
    assert.deepEqual(await listedIds(page), [], 'the list is empty');
    assert.deepEqual((await a.exportJson()).memories, [], 'the export is empty');
    verified(`${device}: deleted everything after typing DELETE`, {
      wrong_confirmation_status: wrong, post_status: everything, flash: everythingFlash,
    });

    // --- Import the export back. ---
    const imported = await a.importFile(exportFile);
    await a.goto(`${mcpBase}/app/?state=all`);
    const back = await page.locator('body').innerText();
    for (const text of exportedTexts.filter((t) => t.includes(word))) assert.ok(back.includes(text), `imported back: "${text}"`);
    const reimported = (await a.exportJson()).memories;
    assert.deepEqual(reimported.map((m) => m.text).sort(), [...exportedTexts].sort(), 'the same memories are stored again');
    assert.ok(numbersIn(imported).includes(exported.memories.length), `the page reports ${exported.memories.length} imported: "${imported}"`);
    const again = await a.importFile(exportFile);
    assert.equal((await a.exportJson()).memories.length, exported.memories.length, 'importing the same file again adds nothing');
    assert.ok(/skip/i.test(again) && numbersIn(again).includes(exported.memories.length), `the page reports ${exported.memories.length} skipped: "${again}"`);
    verified(`${device}: imported the export back`, { first: imported, again });

    // --- The apps page; revoke the SDK's access. ---
    await a.goto(`${mcpBase}/app/apps`);
    const appsText = await page.locator('body').innerText();
    assert.ok(appsText.includes(sdk.clientName) || appsText.includes(sdk.clientId), 'the apps page lists the SDK client');
    assert.ok(appsText.includes('Activity, last 30 days'), 'the activity chart is titled');
    assert.ok(await page.locator('svg').count() > 0, 'the activity chart is an SVG');
    await a.capture('apps', device, screenshots, layout);
    await axeCheck(axeContext, `${mcpBase}/app/apps`, 'apps', axeResults);
    // Bob's attempt had the time a real revocation gets to reach mcp-server: Alice's grant works.
    const wait = PROPAGATION_MS - (Date.now() - bobRevokedAt);
    if (wait > 0) await sleep(wait);
    toolResult(await sdk.client.callTool({ name: 'search', arguments: { query: word } }), 'search');
    const revokeForm = page.locator('form').filter({ has: page.locator(`input[name=client_id][value="${sdk.clientId}"]`) });
    // Its visible text is "Revoke access"; its accessible name also names the app.
    const revokePost = await a.navigateBy(revokeForm.locator('button', { hasText: 'Revoke access' }));
    const revokeFlash = await flash(page);
    const since = Date.now();
    sdk.provider.refuseNewAuthorizations = true;
    const refused = await sdk.refusedWithin(since, word);
    await a.goto(`${mcpBase}/app/apps`);
    assert.equal(await page.locator(`input[name=client_id][value="${sdk.clientId}"]`).count(), 0, 'the revoked app has no grant left to revoke');
    verified(`${device}: revoking the SDK's access on the apps page: its next MCP call is refused with 401`, {
      client_id: sdk.clientId, post_status: revokePost, flash: revokeFlash, ...refused,
    });

    // --- Sign out. ---
    await a.goto(`${mcpBase}/app/`);
    await a.navigateBy(page.getByRole('button', { name: 'Sign out', exact: true }));
    const out = await a.context.request.get(`${mcpBase}/app/`, { maxRedirects: 0 });
    assert.equal(out.status(), 303, 'signed out: the list sends the browser to sign in');
    assert.ok(new URL(out.headers().location, mcpBase).pathname === '/app/login', `to /app/login: ${out.headers().location}`);

    await axeContext.close();
    verified(`${device}: axe-core ran on every page`, { inline_injection_blocked_by_csp: injection, pages: axeResults });
    for (const [name, result] of Object.entries(axeResults)) {
      finding(result.serious + result.critical === 0, `axe-core: serious or critical violations on the ${name} page: ${result.violations.join('; ')}`);
    }
    problems.push(...a.problems);
    finding(problems.length === 0, `console errors, CSP violations or failed subresources: ${problems.join(' | ')}`);
    if (problems.length === 0) verified(`${device}: no console errors, CSP violations or failed subresources`, { screenshots, layout });
    return findings;
  } catch (error) {
    await a.page.screenshot({ path: join(shots, `failure-${device}.png`), fullPage: true }).catch(() => {});
    const seen = [...problems, ...a.problems, ...(b?.problems ?? [])];
    const noted = seen.length ? ` [browser problems: ${seen.join(' | ')}]` : '';
    const failed = findings.length ? ` [failed checks before: ${findings.join(' | ')}]` : '';
    throw new Error(`${device}: ${error.message}${noted}${failed} (screenshot: failure-${device}.png)`, { cause: error });
  } finally {
    if (b) await b.close();
    await a.close();
    if (sdk) await sdk.close();
  }
}

/** One user's browser context: a page watched for console errors and CSP violations. */
class BrowserSession {
  static async open(browser, options, mcpBase, name) {
    const context = await browser.newContext({ ...options, acceptDownloads: true });
    // CSP violations as console errors, whatever Chromium itself logs for them.
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'} in ${event.sourceFile}:${event.lineNumber}`);
      });
    });
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    return new BrowserSession(context, page, mcpBase, name);
  }

  constructor(context, page, mcpBase, name) {
    this.context = context;
    this.page = page;
    this.mcpBase = mcpBase;
    this.name = name;
    this.failures = [];
    this.consoleErrors = [];
    /** Documents whose 4xx the test asked for: Chromium's console line for them is expected. */
    this.expectedErrors = new Set();
    page.on('console', (message) => {
      if (message.type() === 'error') {
        this.consoleErrors.push({ at: page.url(), text: message.text(), url: message.location().url });
      }
    });
    page.on('pageerror', (error) => this.failures.push(`${name} at ${page.url()}: page error: ${error}`));
    page.on('requestfailed', (request) => {
      const failure = request.failure()?.errorText ?? '';
      // Cancelled, not failed: a download ends its navigation so, and leaving a page cancels
      // what it still loads (its icon, say). HTTP errors are caught by status below.
      if (/ERR_ABORTED/.test(failure)) return;
      this.failures.push(`${name}: request failed: ${request.method()} ${request.url()}: ${failure}`);
    });
    page.on('response', (response) => {
      const request = response.request();
      if (response.status() >= 400 && !request.isNavigationRequest()) {
        this.failures.push(`${name}: ${request.resourceType()} ${response.url()} answered ${response.status()}`);
      }
    });
    page.on('dialog', (dialog) => dialog.accept()); // a confirm() added by app.js, if any
  }

  /**
   * Console errors (CSP violations among them), page errors and failed subresources, except
   * the console lines for documents the test expected to fail.
   */
  get problems() {
    const expectedLoad = /^Failed to load resource: the server responded with a status of 4\d\d/;
    const errors = this.consoleErrors
      .filter(({ text, url }) => !(expectedLoad.test(text) && this.expectedErrors.has(url)))
      .map(({ at, text, url }) => `${this.name} at ${at}: console error: ${text} (${url})`);
    return [...errors, ...this.failures];
  }

  /** Signs in from `/app/`, following the redirects to the provider's pages and back. */
  async signIn(issuer, user) {
    const { page, mcpBase } = this;
    const first = await page.goto(`${mcpBase}/app/`);
    const hops = redirectChain(first);
    assert.equal(hops[0], `${mcpBase}/app/`, 'starts at the list');
    assert.ok(hops.some((u) => u.startsWith(`${mcpBase}/app/login?next=`)), `the list sends the browser to /app/login?next=…: ${hops}`);
    const authorize = hops.map((u) => new URL(u)).find((u) => u.origin === new URL(issuer).origin && u.pathname === '/authorize');
    assert.ok(authorize, `/app/login sends the browser to the provider's /authorize: ${hops}`);
    const q = authorize.searchParams;
    assert.equal(q.get('client_id'), 'memory-page', 'the page signs in as client memory-page');
    assert.equal(q.get('response_type'), 'code', 'authorization code');
    assert.equal(q.get('code_challenge_method'), 'S256', 'PKCE S256');
    assert.equal(q.get('redirect_uri'), `${mcpBase}/app/callback`, 'redirect_uri');
    assert.equal(q.get('resource'), `${mcpBase}/mcp`, 'RFC 8707 resource');
    for (const scope of ['openid', 'profile', 'email', 'offline_access']) assert.ok(q.get('scope')?.split(' ').includes(scope), `scope ${scope}: ${q.get('scope')}`);
    assert.ok(q.get('state') && q.get('nonce') && q.get('code_challenge'), 'state, nonce, code_challenge');

    await page.locator('input[name=username]').waitFor();
    const pages = [await page.title()];
    await page.fill('input[name=username]', user.username);
    await page.fill('input[name=password]', user.password);
    const mcpOrigin = new URL(mcpBase).origin;
    await Promise.all([
      page.waitForURL((u) => u.origin === mcpOrigin || u.pathname.endsWith('/login/password')),
      page.click('button[type=submit]'),
    ]);
    if (new URL(page.url()).origin !== mcpOrigin) {
      await page.locator('button[value=approve]').waitFor();
      pages.push(await page.title());
      await Promise.all([page.waitForURL((u) => u.origin === mcpOrigin), page.click('button[value=approve]')]);
    }
    await page.waitForLoadState('load');
    assert.equal(new URL(page.url()).pathname, '/app/', `signed in, the browser is back on the list: ${page.url()}`);
    const cookies = await this.context.cookies(mcpBase);
    const session = cookies.filter((c) => c.httpOnly && c.sameSite === 'Lax' && c.path === '/');
    assert.ok(session.length >= 1, `an HttpOnly SameSite=Lax Path=/ session cookie: ${JSON.stringify(cookies.map(({ value, ...c }) => c))}`);
    return { pages, title: await page.title(), authorize_scope: q.get('scope'), cookie: session.map((c) => c.name) };
  }

  /** Navigates to `url`; asserts the status (200 unless said). Returns it. */
  async goto(url, status = 200) {
    if (status >= 400) this.expectedErrors.add(url);
    const response = await this.page.goto(url);
    assert.equal(response.status(), status, `GET ${url}`);
    return response.status();
  }

  /**
   * Clicks `locator`, which submits a form, and waits for the page that follows. Returns the
   * status of the form's request (a POST's 303, say); a status of 400 or more fails unless
   * listed in `allowed`.
   */
  async navigateBy(locator, allowed = []) {
    const { page } = this;
    // The form's answer (a 303, say), then the load of the page that follows.
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()),
      page.waitForEvent('load'),
      locator.first().click(),
    ]);
    const status = response.status();
    if (status >= 400) {
      assert.ok(allowed.includes(status), `${await describe(response)} answered ${status}`);
      this.expectedErrors.add(response.url());
    }
    return status;
  }

  /**
   * Posts a form from the page's current document (same origin), built in the DOM: `fields`
   * as `[name, value]` pairs, `file` (text) as the file field `file` of a multipart form.
   * Returns the POST's response. `refusalExpected` marks a 4xx as expected.
   */
  async post(url, fields, file = undefined, refusalExpected = false) {
    const { page } = this;
    if (refusalExpected) this.expectedErrors.add(url);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === url && r.request().method() === 'POST'),
      page.waitForEvent('load'),
      page.evaluate(submitFormInPage, { url, fields, file }),
    ]);
    return response;
  }

  /** Opens an attacker page at `origin` that auto-submits a form to `url`; returns the POST's response. */
  async attackFrom(attacker, origin, url, fields, file) {
    this.expectedErrors.add(url);
    const path = attacker.plant({ url, fields, file });
    const [response] = await Promise.all([
      this.page.waitForResponse((r) => r.url() === url && r.request().method() === 'POST'),
      // The planted page submits while it loads: wait for its commit only.
      this.page.goto(`${origin}${path}`, { waitUntil: 'commit' }),
    ]);
    await this.page.waitForURL((u) => u.origin !== origin);
    return response;
  }

  /** Imports `file` with the page's import form; returns the status message. */
  async importFile(file) {
    const { page, mcpBase } = this;
    await this.goto(`${mcpBase}/app/`);
    await page.locator('input[type=file][name=file]').setInputFiles(file);
    await this.navigateBy(page.getByRole('button', { name: 'Import', exact: true }));
    const message = await flash(page);
    assert.ok(/import/i.test(message), `the import reports what it did in role=status: "${message}"`);
    return message;
  }

  /** `GET /app/export` with this session's cookie, parsed. */
  async exportJson() {
    const response = await this.context.request.get(`${this.mcpBase}/app/export`);
    assert.equal(response.status(), 200, 'GET /app/export');
    assert.match(response.headers()['content-type'] ?? '', /json/, 'the export is JSON');
    assert.match(response.headers()['content-disposition'] ?? '', /attachment/, 'the export is an attachment');
    return response.json();
  }

  /** Every memory of this user as `{id, state, text, categories}`, sorted: to compare before and after. */
  async snapshot() {
    const { memories } = await this.exportJson();
    return memories
      .map(({ id, state, text, categories }) => ({ id, state, text, categories }))
      .sort((x, y) => x.id.localeCompare(y.id));
  }

  /** A full-page screenshot as `<name>-<device>.png`; notes horizontal overflow. */
  async capture(name, device, screenshots, layout) {
    const file = `${name}-${device}.png`;
    const path = join(env('E2E_SCREENSHOT_DIR'), file);
    await this.page.screenshot({ path, fullPage: true });
    console.error(`screenshot: ${path}`); // shown by the driver when the run fails
    screenshots.push(file);
    const { scroll, client } = await this.page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
    }));
    layout[name] = scroll <= client ? 'fits' : `scrolls sideways (${scroll} > ${client} px)`;
  }

  async close() {
    await this.context.close();
  }
}

/** A request and its answer, for failure messages: method, URL, Origin, form fields, page text. */
async function describe(response) {
  const request = response.request();
  const headers = await request.allHeaders();
  const body = request.postData() ?? '';
  const fields = /urlencoded/.test(headers['content-type'] ?? '')
    ? [...new URLSearchParams(body).keys()].join(',')
    : (headers['content-type'] ?? '').split(';')[0];
  const text = await response.text().then((t) => t.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200), () => '');
  return `${request.method()} ${response.url()} (Origin ${headers.origin ?? 'none'}, Sec-Fetch-Site ${headers['sec-fetch-site'] ?? 'none'}, fields ${fields}; page: "${text}")`;
}

/** Runs in the page: builds a form from `fields` (and a file field) and submits it. */
function submitFormInPage({ url, fields, file }) {
  const form = document.createElement('form');
  form.method = 'post';
  form.action = url;
  if (file !== undefined) form.enctype = 'multipart/form-data';
  for (const [name, value] of fields) {
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = value;
    form.append(input);
  }
  if (file !== undefined) {
    const input = document.createElement('input');
    input.type = 'file';
    input.name = 'file';
    const transfer = new DataTransfer();
    transfer.items.add(new File([file], 'memories.json', { type: 'application/json' }));
    input.files = transfer.files;
    form.append(input);
  }
  document.body.append(form);
  // After this evaluation returns: the navigation would otherwise destroy its context.
  setTimeout(() => form.submit(), 0);
}

/**
 * A site of an attacker on another port: each planted page auto-submits one form to the
 * memory page (the file field filled by script, as an attacker can).
 */
class AttackerSite {
  static async start() {
    const site = new AttackerSite();
    await new Promise((resolve) => site.server.listen(0, '127.0.0.1', resolve));
    return site;
  }

  constructor() {
    this.pages = new Map();
    this.server = createServer((request, response) => {
      const html = this.pages.get(new URL(request.url, 'http://attacker').pathname);
      if (!html) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
    });
  }

  /** `http://<host>:<port>`: 127.0.0.1 is the same site as the memory page, localhost is not. */
  origin(host) {
    return `http://${host}:${this.server.address().port}`;
  }

  /** Adds a page that posts `fields` (and `file`) to `url`; returns its path. */
  plant({ url, fields, file }) {
    const path = `/win-a-prize/${randomBytes(8).toString('hex')}`;
    const inputs = fields.map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`).join('');
    const multipart = file !== undefined;
    const fileScript = multipart
      ? `const t = new DataTransfer(); t.items.add(new File([${JSON.stringify(file).replace(/</g, '\\u003c')}], 'memories.json', { type: 'application/json' })); f.file.files = t.files;`
      : '';
    this.pages.set(path, `<!doctype html><meta charset="utf-8"><title>You won!</title>
<form id="f" method="post" action="${escapeHtml(url)}"${multipart ? ' enctype="multipart/form-data"' : ''}>${inputs}${multipart ? '<input type="file" name="file">' : ''}</form>
<script>const f = document.getElementById('f'); ${fileScript} f.submit();</script>`);
    return path;
  }

  close() {
    this.server.close();
  }
}

/** The MCP TypeScript SDK signed in as a user, over Streamable HTTP, logging mcp-server's answers. */
class SdkSession {
  static async signIn(mcpUrl, issuer, user, clientName) {
    const provider = new HeadlessOAuthProvider(user, clientName);
    const answers = [];
    const logged = async (url, init) => {
      const response = await fetch(url, init);
      if (String(url).startsWith(mcpUrl.href)) {
        answers.push({ status: response.status, challenge: response.headers.get('www-authenticate') });
      }
      return response;
    };
    const info = { name: clientName, version: '1.0.0' };
    let unauthorized;
    try {
      await new Client(info).connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: logged }));
    } catch (error) {
      unauthorized = error;
    }
    assert.ok(unauthorized instanceof UnauthorizedError, `the SDK's first connect needs authorization, got ${unauthorized}`);
    const walk = provider.walks[0];
    assert.ok(walk?.callback, `the SDK's sign-in ended on ${JSON.stringify(walk?.page)}`);
    assert.equal(walk.callback.searchParams.get('state'), provider.expectedState, 'state');
    assert.equal(walk.callback.searchParams.get('iss'), issuer, 'iss');
    const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: logged });
    await transport.finishAuth(walk.callback.searchParams.get('code'));
    const client = new Client(info);
    await client.connect(transport);
    return new SdkSession(client, transport, provider, answers, walk.pages.map((p) => p.title));
  }

  constructor(client, transport, provider, answers, pages) {
    this.client = client;
    this.transport = transport;
    this.provider = provider;
    this.answers = answers;
    this.pages = pages;
    this.clientId = provider.client.client_id;
    this.clientName = provider.clientMetadata.client_name;
  }

  /**
   * Calls the `search` tool every POLL_MS until mcp-server answers 401; returns the latency
   * since `since` and the challenge.
   */
  async refusedWithin(since, query) {
    for (let attempt = 1; ; attempt += 1) {
      const seen = this.answers.length;
      try {
        toolResult(await this.client.callTool({ name: 'search', arguments: { query } }), 'search');
      } catch (error) {
        const refusal = this.answers.slice(seen).find((a) => a.status === 401);
        assert.ok(refusal, `the SDK's call failed without a 401 from mcp-server: ${error}`);
        assert.match(refusal.challenge ?? '', /invalid_token/, 'the challenge names invalid_token');
        return {
          latency_ms: Date.now() - since,
          attempts: attempt,
          challenge: refusal.challenge,
          sdk_error: String(error),
          new_authorizations_refused: this.provider.refusedAuthorizations,
        };
      }
      assert.ok(Date.now() - since < GIVE_UP_MS, `the SDK's calls still succeed ${GIVE_UP_MS} ms after the revocation`);
      await sleep(POLL_MS);
    }
  }

  async close() {
    await this.transport.terminateSession().catch(() => {});
    await this.client.close().catch(() => {});
  }
}

/**
 * The SDK's OAuthClientProvider: a public DCR client whose "browser" is the headless walk
 * over the provider's pages. After the revocation it refuses to sign in again, so that the
 * SDK's call fails instead of quietly getting a new grant.
 */
class HeadlessOAuthProvider {
  constructor(user, clientName) {
    this.user = user;
    this.name = clientName;
    this.walks = [];
    this.refuseNewAuthorizations = false;
    this.refusedAuthorizations = 0;
  }

  get redirectUrl() { return SDK_REDIRECT_URI; }

  get clientMetadata() {
    return {
      client_name: this.name,
      redirect_uris: [SDK_REDIRECT_URI],
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

  invalidateCredentials(scope) {
    if (scope === 'tokens' || scope === 'all') this.savedTokens = undefined;
  }

  async redirectToAuthorization(url) {
    if (this.refuseNewAuthorizations) {
      this.refusedAuthorizations += 1;
      return;
    }
    this.walks.push(await walkAuthorization(url, {
      redirectUri: SDK_REDIRECT_URI, username: this.user.username, password: this.user.password,
    }));
  }
}

/**
 * Whether the page's CSP refuses axe's script tag in a context that keeps the CSP (it should:
 * `script-src 'self'`, no inline scripts). The probe runs in a throwaway context so its
 * expected violation does not count against the pages.
 */
async function inlineInjectionBlocked(browser, options, session, mcpBase) {
  const probe = await browser.newContext({ ...options, storageState: await session.context.storageState() });
  try {
    const page = await probe.newPage();
    await page.goto(`${mcpBase}/app/`);
    await page.addScriptTag({ path: AXE_PATH }).catch(() => {});
    const present = await page.evaluate(() => typeof window.axe !== 'undefined');
    assert.ok(!present, "the page's CSP lets an inline script run");
    return true;
  } finally {
    await probe.close();
  }
}

/**
 * axe-core on `url`. The page's CSP (`script-src 'self'`) blocks the inline script tag that
 * injects axe (see inlineInjectionBlocked), so this runs in a context with `bypassCSP: true`,
 * used ONLY for this pass; the scenario's own contexts keep the CSP and count its violations.
 */
async function axeCheck(context, url, name, results, status = 200) {
  const page = await context.newPage();
  try {
    const response = await page.goto(url);
    assert.equal(response.status(), status, `axe: GET ${url}`);
    await page.addScriptTag({ path: AXE_PATH });
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
      }));
    });
    const counts = { critical: 0, serious: 0, moderate: 0, minor: 0 };
    for (const v of violations) counts[v.impact] = (counts[v.impact] ?? 0) + 1;
    results[name] = { ...counts, violations: violations.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.targets.join(', ')})`) };
  } finally {
    await page.close();
  }
}

/**
 * Checks the page's CSP against the contract's `default-src 'none'; style-src 'self';
 * script-src 'self'; img-src 'self' data:; form-action 'self' {issuer}; frame-ancestors
 * 'none'; base-uri 'none'`: each of these directives present, allowing no source the
 * contract does not (a stricter list, such as `img-src 'self'`, is fine).
 */
function checkCsp(csp, issuer) {
  const contract = {
    'default-src': ["'none'"],
    'style-src': ["'self'"],
    'script-src': ["'self'"],
    'img-src': ["'self'", 'data:'],
    'form-action': ["'self'", issuer],
    'frame-ancestors': ["'none'"],
    'base-uri': ["'none'"],
  };
  const policy = new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...sources]) => [name, sources]));
  for (const [directive, allowed] of Object.entries(contract)) {
    const sources = policy.get(directive);
    assert.ok(sources && sources.length > 0, `CSP has ${directive}: ${csp}`);
    for (const source of sources) assert.ok(allowed.includes(source), `CSP ${directive} allows ${source}, beyond the contract: ${csp}`);
  }
  assert.ok(policy.get('form-action').includes(issuer), `CSP form-action allows the provider (sign-in): ${csp}`);
}

/** Checks an export against the documented format. */
function checkExportFormat(exported) {
  assert.deepEqual(Object.keys(exported).sort(), ['exported_at', 'format', 'memories', 'version'], 'export: top-level keys');
  assert.equal(exported.format, EXPORT_FORMAT, 'export: format');
  assert.equal(exported.version, 1, 'export: version');
  // Unix seconds, the one convention of the REST API, the MCP tools and the export (the
  // contract's first draft said milliseconds; the page follows the APIs since 510be74).
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Number.isInteger(exported.exported_at) && Math.abs(now - exported.exported_at) < 600, `export: exported_at in Unix seconds: ${exported.exported_at}`);
  assert.ok(Array.isArray(exported.memories) && exported.memories.length > 0, 'export: memories');
  for (const m of exported.memories) {
    assert.deepEqual(Object.keys(m).sort(), EXPORT_KEYS, `export: keys of memory ${m.id}`);
    assert.equal(typeof m.text, 'string', 'export: text');
    assert.ok(m.metadata && typeof m.metadata === 'object' && !Array.isArray(m.metadata), 'export: metadata is an object');
    assert.ok(Array.isArray(m.categories), 'export: categories is an array');
    assert.ok(['active', 'paused', 'archived'].includes(m.state), `export: state ${m.state}`);
    for (const time of [m.created_at, m.updated_at]) {
      assert.ok(Number.isInteger(time) && time > now - 86_400 && time <= now + 600, `export: times in Unix seconds of today: ${time}`);
    }
  }
}

/** An export document holding `memories` (`{text}` each), as a file to import. */
function exportDocument(memories) {
  const now = Math.floor(Date.now() / 1000);
  return {
    format: EXPORT_FORMAT,
    version: 1,
    exported_at: now,
    memories: memories.map(({ text }) => ({
      id: randomUUID(), text, metadata: {}, categories: [], app: 'e2e-import', state: 'active', created_at: now, updated_at: now,
    })),
  };
}

/** The ids of the memory rows (their "Select" checkboxes) on the page. */
async function listedIds(page) {
  return page.locator('input[name=ids]').evaluateAll((inputs) => inputs.map((i) => i.value));
}

/** The page's status messages (`role=status`). */
async function flash(page) {
  const texts = await page.locator('[role=status]').allInnerTexts();
  return texts.join(' ').replace(/\s+/g, ' ').trim();
}

/** The URLs a navigation went through, first to last. */
function redirectChain(response) {
  const urls = [];
  for (let request = response.request(); request; request = request.redirectedFrom()) urls.unshift(request.url());
  return urls;
}

/** A tool call's JSON result (one text item, equal to structuredContent when present). */
function toolResult(result, tool) {
  assert.ok(!result.isError, `${tool} failed: ${JSON.stringify(result.content)}`);
  const texts = result.content.filter((c) => c.type === 'text');
  assert.equal(texts.length, 1, `${tool}: one text content item`);
  return JSON.parse(texts[0].text);
}

function numbersIn(text) {
  return [...text.matchAll(/\d+/g)].map((m) => Number(m[0]));
}

function escapeHtml(text) {
  return String(text).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Last, after the classes above are initialised.
await main(async () => {
  const issuer = env('E2E_ISSUER');
  const mcpUrl = new URL(env('E2E_MCP_URL'));
  const mcpBase = mcpUrl.origin;
  const alice = { username: env('E2E_USERNAME'), password: env('E2E_PASSWORD') };
  const bob = { username: env('E2E_OTHER_USERNAME'), password: env('E2E_OTHER_PASSWORD') };
  const shots = env('E2E_SCREENSHOT_DIR');
  mkdirSync(shots, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'e2e-memory-page-'));
  const attacker = await AttackerSite.start();
  const browser = await chromium.launch({
    executablePath: env('E2E_CHROMIUM'), headless: true, args: CHROMIUM_ARGS, timeout: 60_000,
  });
  try {
    const findings = [];
    for (const [device, options] of Object.entries(VIEWPORTS)) {
      findings.push(...await scenario({
        device, options, browser, issuer, mcpUrl, mcpBase, alice, bob, shots, work, attacker,
      }));
    }
    assert.ok(findings.length === 0, `${findings.length} failed checks:\n  ${findings.join('\n  ')}\n`);
  } finally {
    await browser.close();
    attacker.close();
    rmSync(work, { recursive: true, force: true });
  }
}, { timeoutMs: 560_000 });
