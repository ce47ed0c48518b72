// semsearch playground: plain JS, no dependencies, no build step.
//
// Talks to the API with URLs relative to the page (`v1/search`, not
// `/v1/search`), so it also works behind a reverse proxy that serves
// semsearch under a sub-path. Text from the index (titles, texts, URLs) only
// ever reaches the page as textContent or a checked http(s) href: the
// Content-Security-Policy enforces Trusted Types, so an HTML sink would fail.
'use strict';

const KEY_STORAGE = 'semsearch.apiKey';
const STATS_EVERY_MS = 30000;
const SNIPPET_CHARS = 320;

const $ = (selector) => document.querySelector(selector);
const form = $('#search');
const input = $('#q');
const results = $('#results');
const summary = $('#summary');

/** What the page knows about the server; `null` means not known yet. */
const server = { textSearch: null, dimension: null, indexVersion: null };
/** Each search gets a number; an answer that is not the latest is dropped. */
let searchSeq = 0;

// ---- API key: this tab's sessionStorage only ------------------------------

function readKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return ''; // Storage disabled: the key lives only in the field.
  }
}

function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage disabled: nothing to keep.
  }
}

function showKeyState() {
  $('#key-state').textContent = readKey() ? 'set' : 'none';
}

// ---- HTTP -----------------------------------------------------------------

/** A failed call, shaped like the server's problem+json (RFC 9457). */
class Problem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || '';
    this.title = body.title || `HTTP ${status}`;
    this.detail = body.detail || '';
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json, application/problem+json' };
  const key = readKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new Problem(0, { title: 'No answer from the server', detail: String(e.message || e), code: 'network' });
  }
  let data = null;
  if ((res.headers.get('content-type') || '').includes('json')) {
    data = await res.json().catch(() => null);
  }
  if (!res.ok) {
    const problem = data && typeof data === 'object' ? data : { title: res.statusText };
    throw new Problem(res.status, problem);
  }
  return data;
}

// ---- Status strip ---------------------------------------------------------

function setStat(name, text, options = {}) {
  const dd = document.querySelector(`[data-stat="${name}"]`);
  dd.textContent = text;
  if (options.title) dd.title = options.title;
  else dd.removeAttribute('title');
  if (options.tone) dd.dataset.tone = options.tone;
  else delete dd.dataset.tone;
}

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 minutes ago" for an RFC 3339 time; the raw text if it does not parse. */
function ago(rfc3339) {
  const then = Date.parse(rfc3339);
  if (Number.isNaN(then)) return rfc3339;
  const secs = Math.round((then - Date.now()) / 1000);
  const steps = [[60, 'second'], [3600, 'minute'], [86400, 'hour'], [Infinity, 'day']];
  let unit = 1;
  for (const [limit, name] of steps) {
    if (Math.abs(secs) < limit) return relative.format(Math.round(secs / unit), name);
    unit = limit;
  }
  return rfc3339;
}

/**
 * "avx512 · int8 (avx512vnni)": the f32 kernel, then how the serving index
 * is scanned (`scan.active`), with the int8 kernel when that is int8.
 */
function kernelText(s) {
  const scan = s.scan;
  if (!scan) return s.kernel;
  return `${s.kernel} · ${scan.active}${scan.active === 'int8' ? ` (${scan.int8_kernel})` : ''}`;
}

function scanTitle(scan) {
  if (!scan) return '';
  return `SEMSEARCH_SCAN=${scan.mode}; since start: ${scan.f32_queries} f32 and ${scan.int8_queries} int8 queries, ${scan.rescored_rows} rows rescored`;
}

const FEED_TONE = { tracking: 'ok', connecting: 'warn', reconnecting: 'warn', unavailable: 'muted' };

function statusMessage(text) {
  $('#status-message').textContent = text;
}

async function loadStats() {
  const strip = $('#stats');
  try {
    const s = await api('GET', 'v1/stats');
    server.dimension = s.dimension;
    $('#random').disabled = !s.dimension;
    server.indexVersion = s.index_version;
    setStat('documents', s.documents.toLocaleString('en'));
    setStat('dimension', String(s.dimension));
    setStat('index_version', String(s.index_version), { title: `published ${s.loaded_at}` });
    setStat('kernel', kernelText(s), { title: scanTitle(s.scan) });
    showAttributeFields(s.attribute_fields);
    const last = s.refresh && s.refresh.last_reload;
    if (last) {
      setStat('last_reload', `${ago(last.finished_at)} (${last.reason})`, {
        title: `${last.finished_at}: ${last.documents} documents in ${Math.round(last.duration_ms)} ms`,
      });
    } else {
      setStat('last_reload', `loaded ${ago(s.loaded_at)}`, { title: s.loaded_at });
    }
    const feed = (s.refresh && s.refresh.change_feed) || 'unknown';
    setStat('change_feed', feed, { tone: FEED_TONE[feed] || 'muted' });
    const failures = s.refresh ? s.refresh.reload_failures : 0;
    statusMessage(
      s.refresh && s.refresh.redis_empty
        ? 'Redis holds no embeddings: the last index loaded keeps serving.'
        : failures ? `${failures} reload(s) failed since start; see the server log.` : '',
    );
    strip.dataset.state = 'ok';
    if (server.textSearch === null) await detectTextSearch();
  } catch (p) {
    strip.dataset.state = 'error';
    applyTextSearch();
    if (p.status === 401) {
      statusMessage('This server needs an API key for searches and statistics: enter it under “API key”.');
      $('#key-panel').open = true;
    } else {
      statusMessage(`Statistics unavailable: ${p.detail || p.title}${p.code ? ` (${p.code})` : ''}`);
    }
  } finally {
    strip.setAttribute('aria-busy', 'false');
  }
}

// ---- Query modes ----------------------------------------------------------

const MODES = {
  text: { label: 'Question', placeholder: 'How do I download a file from the command line?' },
  id: { label: 'Document id', placeholder: 'An id from the index, e.g. an article URL' },
  vector: { label: 'Vector', placeholder: '[0.012, -0.094, …] or numbers separated by spaces' },
};

/**
 * The server has no "can you embed text?" field, so ask it: a blank question
 * is refused with `empty_text` when the server has an embedder (before any
 * embedding) and with `text_search_disabled` when it has none.
 */
async function detectTextSearch() {
  try {
    await api('POST', 'v1/search', { text: ' ', k: 1, with_text: false });
    server.textSearch = true;
  } catch (p) {
    if (p.code === 'text_search_disabled') server.textSearch = false;
    else if (p.code === 'empty_text') server.textSearch = true;
    else server.textSearch = null;
  }
  applyTextSearch();
}

function applyTextSearch() {
  const on = server.textSearch;
  // Without an embedder, questions are still matched by their words.
  for (const radio of form.querySelectorAll('input[name="mode"]')) {
    radio.disabled = on === false && radio.value !== 'lexical';
  }
  if (on === false) setRank('lexical');
  form.dataset.textSearch = on === null ? 'unknown' : on ? 'on' : 'off';
  setStat('text_search', on === null ? 'unknown' : on ? 'on' : 'off', { tone: on ? 'ok' : 'muted' });
  const dim = server.dimension ? `${server.dimension} numbers` : 'as many numbers as the index dimension';
  const note = $('#mode-note');
  if (on === true) {
    note.textContent = 'Text search is on: questions are embedded by the server’s embedder. You can also search by a document id or a vector.';
    if (!input.value && selectedMode() === 'id' && !new URLSearchParams(location.search).has('q')) setMode('text');
  } else if (on === false) {
    note.textContent = `Text search is off on this server (it has no embedder; “semsearch model fetch” installs the local one): questions are matched by their words only; or search by a document id, or paste a vector of ${dim}.`;
  } else {
    note.textContent = 'Could not tell whether this server embeds questions (is an API key needed?). Document ids and vectors always work.';
  }
}

/** How questions are ranked: `hybrid`, `lexical` or `vector` (the API's `mode`). */
function selectedRank() {
  const checked = form.querySelector('input[name="mode"]:checked');
  return checked ? checked.value : 'hybrid';
}

function setRank(rank) {
  const radio = form.querySelector(`input[name="mode"][value="${rank}"]`);
  if (radio && !radio.disabled) radio.checked = true;
}

function selectedMode() {
  const checked = form.querySelector('input[name="by"]:checked');
  return checked ? checked.value : 'id';
}

function setMode(mode) {
  const radio = form.querySelector(`input[name="by"][value="${mode}"]`);
  if (radio && !radio.disabled) radio.checked = true;
  showMode();
}

function showMode() {
  const mode = MODES[selectedMode()];
  $('#q-label').textContent = mode.label;
  input.placeholder = mode.placeholder;
  form.dataset.mode = selectedMode();
}

/** `[1, 2]`, `1, 2` or `1 2` → numbers. */
function parseVector(text) {
  const parts = text.replace(/^\s*\[|\]\s*$/g, '').split(/[\s,]+/).filter(Boolean);
  const vector = parts.map(Number);
  const bad = vector.findIndex((x) => !Number.isFinite(x));
  if (parts.length === 0) throw new Problem(0, { title: 'Empty vector', detail: 'Paste the numbers of a query embedding.', code: 'empty_vector' });
  if (bad >= 0) throw new Problem(0, { title: 'Not a vector', detail: `element ${bad} (“${parts[bad]}”) is not a number`, code: 'invalid_type' });
  return vector;
}

function queryBody(mode, q) {
  if (mode === 'text') return { text: q, mode: selectedRank(), snippet: { max_chars: SNIPPET_CHARS } };
  if (mode === 'vector') return { vector: Array.isArray(q) ? q : parseVector(q) };
  return { id: q };
}

/** A direction drawn uniformly (normal components): its neighbours are a sample of the index. */
function randomVector(dim) {
  return Array.from({ length: dim }, () => {
    const u = 1 - Math.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
  });
}

/** `v1/documents/<id>`: slashes stay (the route takes them), the rest is encoded. */
function documentPath(id) {
  return `v1/documents/${encodeURIComponent(id).replace(/%2F/g, '/')}`;
}

/** The request's `filter` from the filter fields; `{}` when they are empty. */
function filters() {
  const filter = {};
  const prefix = $('#url-prefix').value;
  if (prefix) filter.url_prefix = prefix;
  const fields = parseFields($('#fields').value);
  if (Object.keys(fields).length) filter.fields = fields;
  return Object.keys(filter).length ? { filter } : {};
}

/** `locale=en, product=a|b` → `{locale: 'en', product: ['a', 'b']}` (the note under the field says how). */
function parseFields(text) {
  const fields = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    if (eq < 0 || !name) {
      throw new Problem(0, { title: 'Not a condition', detail: `“${part}” is not name=value`, code: 'invalid_filter' });
    }
    const values = part.slice(eq + 1).split('|').map((v) => filterValue(v.trim()));
    fields[name] = values.length === 1 ? values[0] : values;
  }
  return fields;
}

/** A number, `true`, `false` or a "quoted string" as its JSON value; anything else as text. */
function filterValue(text) {
  if (/^(true|false|-?\d+(\.\d+)?([eE][+-]?\d+)?|".*")$/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

function showAttributeFields(n) {
  const note = $('#attribute-fields');
  if (n === undefined) note.textContent = '';
  else if (n === 0) note.textContent = 'This index has no attribute fields: filter by URL prefix.';
  else note.textContent = `This index has ${n} attribute field${n === 1 ? '' : 's'}.`;
}

// ---- Search and results ---------------------------------------------------

function describe(mode, q, source) {
  if (mode === 'text') return `“${q}” (${RANKS[selectedRank()]})`;
  if (mode === 'vector') return Array.isArray(q) ? 'a random vector' : 'the vector';
  return source && source.title ? `documents like “${source.title}”` : `documents like ${q}`;
}

async function search(mode, q, k, { push = true } = {}) {
  const seq = ++searchSeq;
  hideProblem();
  results.setAttribute('aria-busy', 'true');
  summary.textContent = 'Searching…';
  if (push) remember(mode, q, k);
  try {
    const body = { ...queryBody(mode, q), k, with_text: true, ...filters() };
    // For "more like this", the title of the document the results are like.
    const source = mode === 'id' ? api('GET', documentPath(q)).catch(() => null) : null;
    const answer = await api('POST', 'v1/search', body);
    const doc = await source;
    if (seq !== searchSeq) return;
    render(answer, describe(mode, q, doc), k);
    if (answer.index_version !== server.indexVersion) loadStats();
  } catch (p) {
    if (seq !== searchSeq) return;
    results.replaceChildren();
    summary.textContent = 'No results.';
    showProblem(p);
  } finally {
    if (seq === searchSeq) results.setAttribute('aria-busy', 'false');
  }
}

const FEWER = {
  index_smaller_than_k: 'the index holds no more documents',
  min_score: 'the rest scored below min_score',
  filter: 'no more documents match the filters',
  no_more_matches: 'no more documents contain a word of the question',
};

const RANKS = { hybrid: 'words and meaning', lexical: 'words', vector: 'meaning' };

/** What `score` is in each ranking mode, for the tooltip. */
const SCORE_NAMES = { vector: 'cosine similarity', lexical: 'BM25F score', hybrid: 'fused score (1 = best in both)' };

function render(answer, what, k) {
  const hits = answer.results || [];
  const ms = (answer.took_us / 1000).toFixed(answer.took_us < 10000 ? 2 : 0);
  let text = `${hits.length} result${hits.length === 1 ? '' : 's'} for ${what} in ${ms} ms (index version ${answer.index_version})`;
  if (answer.fewer_results_reason) text += `; fewer than ${k}: ${FEWER[answer.fewer_results_reason] || answer.fewer_results_reason}`;
  summary.textContent = `${text}.`;
  const template = $('#hit-template');
  // Bars show scores relative to the best for BM25F (unbounded), absolute otherwise.
  const top = answer.mode === 'lexical' ? Math.max(...hits.map((h) => Number(h.score)), 1e-9) : 1;
  results.replaceChildren(...hits.map((hit, i) => hitItem(template, hit, i + 1, answer.mode, top)));
}

function isWebUrl(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

function snippet(text) {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= SNIPPET_CHARS) return flat;
  const cut = flat.lastIndexOf(' ', SNIPPET_CHARS);
  return `${flat.slice(0, cut > SNIPPET_CHARS / 2 ? cut : SNIPPET_CHARS)}…`;
}

/** The server's snippet with its highlights as <mark>s (offsets are UTF-16, as JavaScript's). */
function highlighted(snip) {
  const nodes = [];
  let at = 0;
  for (const [start, end] of snip.highlights || []) {
    if (start < at || end > snip.text.length) continue;
    if (start > at) nodes.push(document.createTextNode(snip.text.slice(at, start)));
    const mark = document.createElement('mark');
    mark.textContent = snip.text.slice(start, end);
    nodes.push(mark);
    at = end;
  }
  if (at < snip.text.length) nodes.push(document.createTextNode(snip.text.slice(at)));
  return nodes;
}

function hitItem(template, hit, rank, mode = 'vector', top = 1) {
  const li = template.content.firstElementChild.cloneNode(true);
  li.dataset.id = hit.id;
  li.querySelector('.rank').textContent = String(rank);
  const title = hit.title || hit.url || hit.id;
  const heading = li.querySelector('.title');
  if (isWebUrl(hit.url)) {
    const a = document.createElement('a');
    a.href = hit.url;
    a.rel = 'noopener noreferrer';
    a.textContent = title;
    heading.append(a);
  } else {
    heading.textContent = title;
  }
  li.querySelector('.url').textContent = hit.id === hit.url ? hit.url : `${hit.url} · id ${hit.id}`;
  const snip = li.querySelector('.snippet');
  if (hit.snippet) snip.replaceChildren(...highlighted(hit.snippet));
  else if (hit.text) snip.textContent = snippet(hit.text);
  else snip.remove();
  const score = Number(hit.score);
  li.querySelector('.value').textContent = score.toFixed(4);
  let scoreTitle = `${SCORE_NAMES[mode] || 'score'} ${score}`;
  if (hit.vector_score !== undefined) scoreTitle += `; cosine ${hit.vector_score}`;
  if (hit.lexical_score !== undefined) scoreTitle += `; BM25F ${hit.lexical_score}`;
  li.querySelector('.score').title = scoreTitle;
  li.querySelector('.fill').style.setProperty('--score', String(Math.max(0, Math.min(1, score / top))));
  const more = li.querySelector('.more');
  more.setAttribute('aria-label', `More like this: ${title}`);
  more.addEventListener('click', () => {
    setMode('id');
    input.value = hit.id;
    search('id', hit.id, currentK());
    $('#results-title').focus();
  });
  return li;
}

function showProblem(p) {
  const box = $('#problem');
  const where = p.status ? `HTTP ${p.status}` : 'In this page';
  box.querySelector('.problem-title').textContent = `${p.title}${p.code ? ` — ${p.code}` : ''} (${where})`;
  let detail = p.detail;
  if (p.status === 401) {
    detail = `${detail} Enter the key under “API key” below.`;
    $('#key-panel').open = true;
  }
  box.querySelector('.problem-detail').textContent = detail;
  box.dataset.code = p.code;
  box.hidden = false;
}

function hideProblem() {
  $('#problem').hidden = true;
}

function currentK() {
  return Number($('#k').value) || 10;
}

// ---- Address bar: each search is a link, Back goes to the previous one ----

/** The filter inputs, by id; each is also the address's parameter for it. */
const FILTER_FIELDS = ['url-prefix', 'fields'];

function remember(mode, q, k) {
  if (mode === 'vector') return; // Too long for an address.
  const params = new URLSearchParams({ by: mode, q, k: String(k) });
  if (mode === 'text') params.set('rank', selectedRank());
  for (const id of FILTER_FIELDS) {
    if ($(`#${id}`).value) params.set(id, $(`#${id}`).value);
  }
  history.pushState(null, '', `?${params}`);
}

function replay() {
  const params = new URLSearchParams(location.search);
  const q = params.get('q');
  if (!q) return;
  const mode = MODES[params.get('by')] ? params.get('by') : 'id';
  const k = params.get('k');
  if (k && [...$('#k').options].some((o) => o.value === k)) $('#k').value = k;
  setMode(mode);
  if (RANKS[params.get('rank')]) setRank(params.get('rank'));
  input.value = q;
  for (const id of FILTER_FIELDS) $(`#${id}`).value = params.get(id) || '';
  search(selectedMode(), q, currentK(), { push: false });
}

// ---- Wiring ---------------------------------------------------------------

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const q = input.value.trim();
  if (!q) {
    showProblem(new Problem(0, { title: 'Nothing to search for', detail: `Type a ${MODES[selectedMode()].label.toLowerCase()}.`, code: 'query_required' }));
    input.focus();
    return;
  }
  search(selectedMode(), q, currentK());
});

form.addEventListener('change', (event) => {
  if (event.target.name === 'by') showMode();
});

$('#key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const field = $('#api-key');
  storeKey(field.value.trim());
  field.value = '';
  showKeyState();
  server.textSearch = null;
  loadStats().then(() => {
    if ($('#stats').dataset.state === 'ok') $('#key-panel').open = false;
  });
});

$('#forget-key').addEventListener('click', () => {
  storeKey('');
  $('#api-key').value = '';
  showKeyState();
});

$('#random').addEventListener('click', () => {
  if (server.dimension) search('vector', randomVector(server.dimension), currentK(), { push: false });
});

$('#refresh-stats').addEventListener('click', loadStats);
window.addEventListener('popstate', replay);
setInterval(() => {
  if (document.visibilityState === 'visible') loadStats();
}, STATS_EVERY_MS);

showKeyState();
showMode();
loadStats().then(replay);
