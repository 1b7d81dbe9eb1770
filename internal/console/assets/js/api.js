// The console's client of coligo's /v2 API. The session is an HttpOnly
// cookie the browser sends and no script reads; what this module keeps is
// the session's CSRF token (in memory only), which every request that
// changes something carries.

let csrf = '';
export let session = null;
let onEnded = () => {};

// whenEnded sets what happens when the server says the session has ended.
export function whenEnded(fn) { onEnded = fn; }

export class APIError extends Error {
  constructor(status, code, message, trace) {
    super(message);
    this.status = status;
    this.code = code;
    this.trace = trace;
  }
}

// call makes one API request and returns its decoded answer.
export async function call(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = opts.type || 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  if (opts.ifMatch) headers['If-Match'] = opts.ifMatch;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) {
    let e = {};
    try { e = await r.json(); } catch (x) { /* not JSON */ }
    const first = (e.errors && e.errors[0]) || {};
    const err = new APIError(r.status, first.code || `http_${r.status}`, first.message || r.statusText, e.trace);
    if (r.status === 401 && !opts.quiet) { session = null; csrf = ''; onEnded(err); }
    throw err;
  }
  if (r.status === 204 || r.status === 202 && r.headers.get('Content-Length') === '0') return null;
  const ct = r.headers.get('Content-Type') || '';
  return ct.includes('json') ? r.json() : r.text();
}

export const get = (path) => call('GET', path);

// list reads every page of a list (up to 20 pages of 100).
export async function list(path, key) {
  const out = [];
  let start = '';
  for (let i = 0; i < 20; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}limit=100${start ? `&start=${encodeURIComponent(start)}` : ''}`);
    out.push(...(page[key] || []));
    if (!page.next || !page.next.start) break;
    start = page.next.start;
  }
  return out;
}

// login exchanges a token for a session; the token is not kept.
export async function login(token) {
  const s = await call('POST', '/console/session', { token }, { quiet: true });
  csrf = s.csrf_token;
  session = s;
  return s;
}

// resume finds the session of the cookie the browser holds, if any.
export async function resume() {
  try {
    const s = await call('GET', '/console/session', undefined, { quiet: true });
    csrf = s.csrf_token;
    session = s;
    return s;
  } catch (e) {
    if (e.status === 401 || e.status === 400) return null;
    throw e;
  }
}

export async function logout() {
  try { await call('DELETE', '/console/session'); } finally { csrf = ''; session = null; }
}

// can says whether the session's role reaches need.
export function can(need) {
  const order = ['reader', 'writer', 'manager', 'admin'];
  return session && order.indexOf(session.role) >= order.indexOf(need);
}

// stream reads a text response as it comes, handing each piece to onText,
// until it ends or signal aborts it.
export async function stream(path, onText, signal) {
  const r = await fetch(path, { credentials: 'same-origin', cache: 'no-store', signal });
  if (!r.ok) {
    let e = {};
    try { e = await r.json(); } catch (x) { /* not JSON */ }
    const first = (e.errors && e.errors[0]) || {};
    throw new APIError(r.status, first.code || `http_${r.status}`, first.message || r.statusText, e.trace);
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onText(dec.decode(value, { stream: true }));
  }
}

// p builds an API path of escaped segments.
export function p(...segs) {
  return '/v2/' + segs.map((s) => encodeURIComponent(s)).join('/');
}
