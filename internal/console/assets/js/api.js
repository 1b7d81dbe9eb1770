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

// A browser on the machine that runs coligo aborts what is in flight each
// time a container's network interface comes or goes
// (ERR_NETWORK_CHANGED): fetch then fails with a TypeError. Reads are
// asked again; a write is not (it may have been done), and its error says
// to check.
const retries = [150, 400, 1000];

async function send(url, init, again) {
  for (let i = 0; ; i++) {
    try {
      return await fetch(url, init);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      if (!again || i === retries.length) {
        throw new APIError(0, 'network_error', again
          ? `The network failed (${e.message}); the console will try again.`
          : `The network failed while this was sent (${e.message}): check whether it was done, then try again.`);
      }
      await new Promise((r) => setTimeout(r, retries[i]));
    }
  }
}

// call makes one API request and returns its decoded answer.
export async function call(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = opts.type || 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  if (opts.ifMatch) headers['If-Match'] = opts.ifMatch;
  // Reads, and a login (a second session does no harm), are sent again.
  const again = method === 'GET' || method === 'HEAD' || path === '/console/session' && method === 'POST';
  const r = await send(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error',
    body: body === undefined ? undefined : JSON.stringify(body),
  }, again);
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
  const r = await send(path, { credentials: 'same-origin', cache: 'no-store', signal }, true);
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
