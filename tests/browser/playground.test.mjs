// The playground at `/` in Debian's headless chromium, driven like a person
// would: enter the API key, search, follow "more like this", go back, make a
// mistake. What the page shows is compared with what the API answers for the
// same request, never with copied values. Run by .ci/browser.sh, which says
// which environment variables it needs.
//
// The browser may reach the server under test and nothing else: every other
// request is aborted and makes the test fail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const base = new URL(requiredEnv('SEMSEARCH_URL'));
const key = process.env.SEMSEARCH_API_KEY || '';
const screenshot = requiredEnv('SEMSEARCH_SCREENSHOT');
const K = 5;
/** For a server with text search: a question about the demo corpus (Debian packages). */
const QUESTION = 'command line tool to download files over HTTP';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name} (see .ci/browser.sh)`);
  return value;
}

/** The API, asked directly: the oracle for what the page should show. */
async function api(method, path, body) {
  const headers = { 'content-type': 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(new URL(path, base), { method, headers, body: body && JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function searchIds(query) {
  const { status, json } = await api('POST', 'v1/search', { ...query, k: K, with_text: false });
  assert.equal(status, 200, JSON.stringify(json));
  return json.results;
}

let browser;
let page;
const offSite = [];
const scriptErrors = [];

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Names resolve only for the server under test (an IP literal needs no lookup).
    args: [`--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${base.hostname}`],
  });
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, serviceWorkers: 'block' });
  await context.route('**/*', (route) => {
    if (new URL(route.request().url()).origin === base.origin) return route.continue();
    offSite.push(route.request().url());
    return route.abort('blockedbyclient');
  });
  page = await context.newPage();
  page.on('pageerror', (e) => scriptErrors.push(String(e)));
  page.on('console', (msg) => {
    // Chromium logs every non-2xx fetch as an error; the 401, 404 and the
    // text-search probe's 422 are expected. Anything else (a CSP or Trusted
    // Types violation, an exception) is not.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource: the server responded')) {
      scriptErrors.push(msg.text());
    }
  });
});

after(async () => {
  await browser?.close();
});

test('the page loads its own assets only, and asks for a key when the server wants one', async () => {
  const res = await page.goto(base.href);

  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-security-policy'], /default-src 'none'/);
  await page.getByRole('heading', { name: /semsearch/ }).waitFor();
  if (key) {
    await page.getByText('needs an API key').waitFor();
    assert.equal(await page.locator('#key-panel').getAttribute('open'), '', 'the key panel opens by itself');
  }
  assert.deepEqual(offSite, []);
});

test('with the key, the status strip shows what /v1/stats says', async () => {
  const stats = (await api('GET', 'v1/stats')).json;

  if (key) {
    await page.getByLabel('API key', { exact: true }).fill(key);
    const sent = page.waitForRequest((r) => r.url().endsWith('/v1/stats'));
    await page.getByRole('button', { name: 'Use key' }).click();
    assert.equal((await sent).headers().authorization, `Bearer ${key}`);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('semsearch.apiKey')), key);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'the key never reaches localStorage');
  }

  const stat = (name) => page.locator(`[data-stat="${name}"]`);
  await page.waitForFunction(() => document.querySelector('#stats').dataset.state === 'ok');
  assert.equal(await stat('documents').textContent(), stats.documents.toLocaleString('en'));
  assert.equal(await stat('dimension').textContent(), String(stats.dimension));
  assert.equal(await stat('index_version').textContent(), String(stats.index_version));
  // The f32 kernel, then how the serving index is scanned (its int8 kernel when int8).
  const scan = stats.scan;
  const kernel = `${stats.kernel} · ${scan.active}${scan.active === 'int8' ? ` (${scan.int8_kernel})` : ''}`;
  assert.equal(await stat('kernel').textContent(), kernel);
  assert.match(await stat('kernel').getAttribute('title'), new RegExp(`^SEMSEARCH_SCAN=${scan.mode};`));
  assert.equal(await stat('change_feed').textContent(), stats.refresh.change_feed);
  assert.match(await stat('last_reload').textContent(), /ago|now|loaded/);
  assert.ok(stats.documents > K, `the server holds more than ${K} documents`);
});

/** Whether the server embeds questions, asked the way the page asks. */
let textSearch;

test('the page says which query mode is active, as the server answers', async () => {
  const probe = await api('POST', 'v1/search', { text: ' ', k: 1 });
  textSearch = probe.json.code === 'empty_text';
  assert.ok(['empty_text', 'text_search_disabled'].includes(probe.json.code), JSON.stringify(probe.json));

  // The page asks after /v1/stats answers; 'unknown' is what it shows until then.
  await page.waitForFunction(() => ['on', 'off'].includes(document.querySelector('#search').dataset.textSearch));
  const form = page.locator('#search');
  assert.equal(await form.getAttribute('data-text-search'), textSearch ? 'on' : 'off');
  // Questions are always possible: without an embedder they are matched by their words.
  assert.equal(await page.getByRole('radio', { name: 'Question' }).isDisabled(), false);
  assert.equal(await page.getByRole('radio', { name: 'Words and meaning' }).isDisabled(), !textSearch);
  assert.equal(await page.getByRole('radio', { name: 'Meaning', exact: true }).isDisabled(), !textSearch);
  assert.match(await page.locator('#mode-note').textContent(), textSearch ? /Text search is on/ : /Text search is off/);
});

/** The ids the first search showed, for the Back check. */
let firstIds;

test('a search lists results with data-id, rank, score and link, as the API ranks them', async () => {
  let query;
  if (textSearch) {
    query = { text: QUESTION };
    await page.getByRole('radio', { name: 'Question' }).check();
  } else {
    const dim = (await api('GET', 'v1/stats')).json.dimension;
    const probe = Array.from({ length: dim }, (_, i) => Math.sin(i + 1));
    query = { id: (await searchIds({ vector: probe }))[0].id };
    await page.getByRole('radio', { name: 'Document id' }).check();
  }
  const expected = await searchIds(query);

  await page.getByRole('combobox', { name: 'Results' }).selectOption(String(K));
  const box = page.locator('input[name="q"]');
  await box.fill(query.text ?? query.id);
  await box.press('Enter');

  const items = page.locator('#results > li[data-id]');
  await page.waitForFunction((k) => document.querySelectorAll('#results > li[data-id]').length === k, K);
  const ids = await items.evaluateAll((lis) => lis.map((li) => li.dataset.id));
  assert.deepEqual(ids, expected.map((r) => r.id));
  if (query.id) assert.ok(!ids.includes(query.id), 'the query document is left out');
  for (const [i, hit] of expected.entries()) {
    const item = items.nth(i);
    assert.equal(await item.locator('.rank').textContent(), String(i + 1));
    assert.equal(await item.locator('.score .value').textContent(), hit.score.toFixed(4));
    if (/^https?:/.test(hit.url)) assert.equal(await item.getByRole('link').getAttribute('href'), hit.url);
  }
  assert.match(await page.locator('#summary').textContent(), new RegExp(`^${K} results`));
  firstIds = ids;
});

test('"more like this" searches by that result, moves focus to the results and is a link', async () => {
  const items = page.locator('#results > li[data-id]');
  const chosen = await items.nth(1).getAttribute('data-id');
  const expected = await searchIds({ id: chosen });

  await items.nth(1).getByRole('button', { name: /More like this/ }).click();

  await page.waitForFunction(
    (first) => document.querySelector('#results > li[data-id]')?.dataset.id === first
      && document.querySelector('#results').getAttribute('aria-busy') === 'false',
    expected[0].id,
  );
  const ids = await items.evaluateAll((lis) => lis.map((li) => li.dataset.id));
  assert.deepEqual(ids, expected.map((r) => r.id));
  assert.equal(await page.locator('input[name="q"]').inputValue(), chosen);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'results-title');
  assert.equal(new URL(page.url()).searchParams.get('q'), chosen);
});

test('Back shows the previous search again', async () => {
  await page.goBack();

  await page.waitForFunction(
    (first) => document.querySelector('#results > li[data-id]')?.dataset.id === first
      && document.querySelector('#results').getAttribute('aria-busy') === 'false',
    firstIds[0],
  );
  const ids = await page.locator('#results > li[data-id]').evaluateAll((lis) => lis.map((li) => li.dataset.id));
  assert.deepEqual(ids, firstIds);
});

test('a URL prefix filter narrows the results as the API filters them, and the address keeps it', async () => {
  // A prefix one character past the last slash of a result's URL: it keeps
  // some documents of the index and drops others.
  const url = (await searchIds({ id: firstIds[0] }))[1].url;
  const prefix = url.slice(0, url.lastIndexOf('/') + 2);
  const { status, json } = await api('POST', 'v1/search', { id: firstIds[0], k: K, with_text: false, filter: { url_prefix: prefix } });
  assert.equal(status, 200, JSON.stringify(json));
  assert.ok(json.results.length > 0 && json.results.every((r) => r.url.startsWith(prefix)), JSON.stringify(json));
  const stats = (await api('GET', 'v1/stats')).json;

  await page.getByRole('radio', { name: 'Document id' }).check();
  await page.locator('input[name="q"]').fill(firstIds[0]);
  await page.getByLabel('URL starts with').fill(prefix);
  await page.getByRole('button', { name: 'Search', exact: true }).click();

  await page.waitForFunction(
    (first) => document.querySelector('#results > li[data-id]')?.dataset.id === first
      && document.querySelector('#results').getAttribute('aria-busy') === 'false',
    json.results[0].id,
  );
  const ids = await page.locator('#results > li[data-id]').evaluateAll((lis) => lis.map((li) => li.dataset.id));
  assert.deepEqual(ids, json.results.map((r) => r.id));
  assert.equal(new URL(page.url()).searchParams.get('url-prefix'), prefix);
  const fields = stats.attribute_fields;
  assert.match(await page.locator('#attribute-fields').textContent(),
    fields === 0 ? /no attribute fields/ : new RegExp(`has ${fields} attribute field`));
  await page.getByLabel('URL starts with').fill('');
});

test('an attribute condition is sent as filter.fields, and the server\'s refusal is shown', async () => {
  const { status, json } = await api('POST', 'v1/search', { id: firstIds[0], filter: { fields: { no_such_attribute: ['a', 2] } } });
  assert.equal(status, 422, JSON.stringify(json));

  await page.getByLabel('Attributes').fill('no_such_attribute=a|2');
  const sent = page.waitForRequest((r) => r.url().endsWith('/v1/search') && r.method() === 'POST');
  await page.getByRole('button', { name: 'Search', exact: true }).click();

  assert.deepEqual(JSON.parse((await sent).postData()).filter, { fields: { no_such_attribute: ['a', 2] } });
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.equal(await alert.getAttribute('data-code'), json.code);
  await page.getByLabel('Attributes').fill('');
});

test('questions are ranked by words, meaning or both, and snippets mark the matched words', async () => {
  await page.getByRole('radio', { name: 'Question' }).check();
  await page.locator('#url-prefix').fill('');
  await page.locator('#fields').fill('');
  for (const [label, mode] of textSearch
    ? [['Words', 'lexical'], ['Words and meaning', 'hybrid'], ['Meaning', 'vector']]
    : [['Words', 'lexical']]) {
    await page.getByRole('radio', { name: label, exact: true }).check();
    const { status, json } = await api('POST', 'v1/search', {
      text: QUESTION, k: K, with_text: true, mode, snippet: { max_chars: 320 },
    });
    assert.equal(status, 200, JSON.stringify(json));
    assert.equal(json.mode, mode);

    const box = page.locator('input[name="q"]');
    await box.fill(QUESTION);
    await box.press('Enter');
    // Two modes may rank alike: wait for this search to finish, not only for its ids.
    await page.waitForFunction(
      ([want, ids]) => {
        const got = [...document.querySelectorAll('#results > li[data-id]')].map((li) => li.dataset.id);
        return document.querySelector('#results').getAttribute('aria-busy') === 'false'
          && got.length === want && got.every((id, i) => id === ids[i]);
      },
      [json.results.length, json.results.map((r) => r.id)],
    );
    assert.match(await page.locator('#summary').textContent(), new RegExp(`\\(${label.toLowerCase()}\\)`));
    const first = json.results[0];
    const marks = await page.locator('#results > li').first().locator('.snippet mark').allTextContents();
    const want = first.snippet.highlights.map(([a, b]) => first.snippet.text.slice(a, b));
    assert.deepEqual(marks, want, `${mode}: the marked words are the API's highlights`);
    if (mode !== 'vector') assert.ok(want.length > 0, `${mode}: a matched word is highlighted`);
    assert.equal(await page.locator('#results > li').first().locator('.snippet').textContent(), first.snippet.text);
    assert.match(new URL(page.url()).search, new RegExp(`rank=${mode}`));
    // The README's picture: a question ranked the default way (words and
    // meaning; words alone when the server has no embedder).
    if (mode === (textSearch ? 'hybrid' : 'lexical')) await page.screenshot({ path: screenshot });
  }
});

test('an unknown id shows the problem code and detail from the server', async () => {
  const missing = `no-such-document-${Date.now()}`;
  const { status, json } = await api('POST', 'v1/search', { id: missing });
  assert.equal(status, 404);

  await page.getByRole('radio', { name: 'Document id' }).check();
  await page.locator('input[name="q"]').fill(missing);
  await page.getByRole('button', { name: 'Search', exact: true }).click();

  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.equal(await alert.getAttribute('data-code'), json.code);
  assert.match(await alert.textContent(), new RegExp(json.code));
  assert.ok((await alert.textContent()).includes(json.detail));
  assert.equal(await page.locator('#results > li').count(), 0);
});

test('nothing was fetched from anywhere else, and no script or policy error happened', () => {
  assert.deepEqual(offSite, []);
  assert.deepEqual(scriptErrors, []);
});
