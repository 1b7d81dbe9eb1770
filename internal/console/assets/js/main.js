// The console's entry: the login page, the navigation and the router,
// which maps the URL fragment (#/projects/…) to a page.
import { h, replace, field, errorBox, announce } from './dom.js';
import * as api from './api.js';
import { projectsPage, projectPage } from './projects.js';
import { appPage } from './apps.js';
import { jobRunPage } from './jobs.js';
import { valuesPage } from './values.js';
import { tokensPage, auditPage } from './admin.js';
import { functionPage } from './functions.js';
import { buildRunPage } from './builds.js';

const main = document.getElementById('main');
let wanted = ''; // the page asked for before logging in
const nav = document.getElementById('nav');

// ctx is the current page's: its timers and requests end when the user
// goes elsewhere.
let ctx = null;
function newContext() {
  if (ctx) ctx.end();
  const timers = [];
  const abort = new AbortController();
  ctx = {
    signal: abort.signal,
    // every runs fn now and then every ms while the page is shown.
    every(ms, fn) {
      // A hidden tab asks nothing; it catches up when shown again.
      const tick = async () => {
        if (abort.signal.aborted || document.hidden) return;
        try { await fn(); } catch (e) { /* shown by fn */ }
      };
      document.addEventListener('visibilitychange', tick, { signal: abort.signal });
      timers.push(setInterval(tick, ms));
      return tick();
    },
    end() { timers.forEach(clearInterval); abort.abort(); },
  };
  return ctx;
}

function renderNav() {
  const s = api.session;
  if (!s) { replace(nav); return; }
  const who = s.project_id ? `${s.role} of one project` : s.role;
  replace(nav, h('ul', {},
    h('li', {}, h('a', { href: '#/projects' }, 'Projects')),
    api.can('manager') ? h('li', {}, h('a', { href: '#/tokens' }, 'Tokens')) : null,
    api.can('manager') ? h('li', {}, h('a', { href: '#/audit' }, 'Audit log')) : null,
    h('li', { class: 'who' }, h('span', {}, `Signed in: ${who}`)),
    h('li', {}, h('button', { type: 'button', class: 'link', onclick: doLogout }, 'Log out'))));
}

async function doLogout() {
  try { await api.logout(); } catch (e) { /* the session is gone either way */ }
  renderNav();
  location.hash = '#/login';
  announce('Logged out');
}

function loginPage() {
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const err = h('div', {});
  const form = h('form', { class: 'card narrow', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    const value = token.value;
    token.value = ''; // the token lives only in this request
    try {
      await api.login(value);
      renderNav();
      announce('Logged in');
      location.hash = wanted || '#/projects';
      wanted = '';
    } catch (x) {
      replace(err, errorBox(x.status === 401 ? new Error('That token is not valid: it is unknown, revoked or expired.') : x));
      token.focus();
    }
  } },
  h('h1', {}, 'Log in to coligo'),
  h('p', {}, 'Paste a coligo token (from ', h('code', {}, 'coligo token create'), ' or the server\'s admin token). The console keeps it only as a session cookie that no page script can read; the session ends after a while or when you log out.'),
  field('Token', token),
  err,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Log in')));
  return form;
}

// routes: pattern segments, ":x" binds a parameter.
const routes = [
  ['login', () => loginPage()],
  ['projects', (c) => projectsPage(c)],
  ['projects/:id', (c, a) => projectPage(c, a.id, 'apps')],
  ['projects/:id/apps/:name', (c, a) => appPage(c, a.id, a.name)],
  ['projects/:id/runs/:name', (c, a) => jobRunPage(c, a.id, a.name)],
  ['projects/:id/functions/:name', (c, a) => functionPage(c, a.id, a.name)],
  ['projects/:id/build_runs/:name', (c, a) => buildRunPage(c, a.id, a.name)],
  ['projects/:id/secrets/:name', (c, a) => valuesPage(c, a.id, 'secrets', a.name)],
  ['projects/:id/config_maps/:name', (c, a) => valuesPage(c, a.id, 'config_maps', a.name)],
  ['projects/:id/:tab', (c, a) => projectPage(c, a.id, a.tab)],
  ['tokens', (c) => tokensPage(c)],
  ['audit', (c) => auditPage(c)],
];

function match(path) {
  const segs = path.split('/').filter(Boolean).map(decodeURIComponent);
  for (const [pattern, page] of routes) {
    const ps = pattern.split('/');
    if (ps.length !== segs.length) continue;
    const args = {};
    if (ps.every((p, i) => (p.startsWith(':') ? ((args[p.slice(1)] = segs[i]), true) : p === segs[i]))) return [page, args];
  }
  return null;
}

async function route() {
  const c = newContext();
  const path = location.hash.replace(/^#\/?/, '').split('?')[0] || 'projects';
  if (!api.session && path !== 'login') {
    wanted = location.hash; // shown once logged in
    location.hash = '#/login';
    return;
  }
  const m = match(path);
  if (!m) { replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No page here. ', h('a', { href: '#/projects' }, 'Go to projects'))); return; }
  try {
    const node = await m[0](c, m[1]);
    if (c !== ctx) return; // the user went elsewhere meanwhile
    replace(main, node);
    const h1 = main.querySelector('h1');
    document.title = `${h1 ? h1.textContent + ' · ' : ''}coligo console`;
    main.focus({ preventScroll: true });
  } catch (e) {
    if (c === ctx) replace(main, h('h1', {}, 'Something went wrong'), errorBox(e));
  }
}

api.whenEnded(() => {
  if (api.session) announce('Your session has ended; log in again.');
  if (ctx) ctx.end();
  renderNav();
  if (location.hash !== '#/login') wanted = location.hash;
  location.hash = '#/login';
});

async function start() {
  window.__coligoStarted = true; // boot.js: the modules loaded
  if (location.search) history.replaceState(null, '', location.pathname + location.hash); // boot.js's ?retry=
  try { await api.resume(); } catch (e) { /* shown by the login page */ }
  renderNav();
  window.addEventListener('hashchange', route);
  route();
}
start();
