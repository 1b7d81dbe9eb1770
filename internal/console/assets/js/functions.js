// Functions: the list, create from code typed in the console (inline code),
// and a function's page with its status, URL and code.
import { h, replace, field, table, badge, when, errorBox, announce, confirmPlain } from './dom.js';
import * as api from './api.js';

const fnHref = (pid, name) => `#/projects/${encodeURIComponent(pid)}/functions/${encodeURIComponent(name)}`;

export async function functionsTab(ctx, project) {
  const body = h('div', {});
  await ctx.every(3000, async () => {
    try {
      const fns = await api.list(api.p('projects', project.id, 'functions'), 'functions');
      replace(body, table('Functions', [
        ['Name', (f) => h('a', { href: fnHref(project.id, f.name) }, f.name)],
        ['Status', (f) => badge(f.status)], ['Runtime', (f) => f.runtime || ''],
        ['URL', (f) => f.endpoint ? h('a', { href: f.endpoint, rel: 'noopener noreferrer', target: '_blank' }, f.endpoint) : ''],
        ['Created', (f) => when(f.created_at)],
      ], fns, 'No functions yet.'));
    } catch (e) { replace(body, errorBox(e)); }
  });
  let runtimes = [];
  try { runtimes = (await api.get('/v2/function_runtimes')).function_runtimes || []; } catch (e) { /* none configured */ }
  return h('div', {}, body, api.can('writer') && runtimes.length ? createForm(project, runtimes) : null);
}

// b64 encodes text as UTF-8 base64.
function b64(text) {
  const bytes = new TextEncoder().encode(text);
  let s = '';
  bytes.forEach((b) => { s += String.fromCharCode(b); });
  return btoa(s);
}

function unb64(s) {
  const bin = atob(s);
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

const samples = {
  nodejs: 'function main(params) {\n  return { body: `Hello ${params.name || "world"}` };\n}\nmodule.exports.main = main;\n',
  python: 'def main(params):\n    return {"body": "Hello " + params.get("name", "world")}\n',
};

function createForm(project, runtimes) {
  const name = h('input', { type: 'text', required: true, autocomplete: 'off' });
  // Each family has a default runtime; the first family's is chosen.
  const first = runtimes.find((r) => r.default && r.family === 'nodejs') || runtimes.find((r) => r.default) || runtimes[0];
  const runtime = h('select', {}, runtimes.map((r) => h('option', { value: r.id }, `${r.name || r.id}${r.default ? ' (default)' : ''}`)));
  runtime.value = first.id;
  const code = h('textarea', { rows: 10, spellcheck: 'false', class: 'code', value: samples[first.family] || '' });
  runtime.addEventListener('change', () => {
    const r = runtimes.find((x) => x.id === runtime.value);
    if (r && samples[r.family] && Object.values(samples).includes(code.value)) code.value = samples[r.family];
  });
  const err = h('div', {});
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    try {
      const f = await api.call('POST', api.p('projects', project.id, 'functions'), {
        name: name.value, runtime: runtime.value, code_binary: false, code_reference: `data:text/plain;base64,${b64(code.value)}` });
      announce(`Function ${f.name} created`);
      location.hash = fnHref(project.id, f.name);
    } catch (x) { replace(err, errorBox(x)); }
  } }, h('h2', {}, 'Create a function'),
  h('div', { class: 'grid' }, field('Name', name), field('Runtime', runtime)),
  field('Code', code, 'The function\'s source; main(params) answers each request.'), err,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create function')));
}

// invokeForm calls the function through the API with a body, and shows
// its answer as text.
function invokeForm(base) {
  const body = h('textarea', { rows: 4, spellcheck: 'false', class: 'code', value: '{"name": "console"}' });
  const type = h('input', { type: 'text', value: 'application/json', autocomplete: 'off' });
  const out = h('div', { 'aria-live': 'polite' });
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(out, h('p', {}, 'Waiting for the answer…'));
    try {
      const r = await api.call('POST', `${base}/invoke`, { body: body.value, content_type: type.value || undefined });
      replace(out, h('p', {}, badge(String(r.status_code)), ` ${r.content_type || ''} · ${r.duration_ms} ms${r.body_truncated ? ' · cut at 1 MiB' : ''}`),
        h('pre', { class: 'logs', tabindex: '0', 'aria-label': 'Answer' }, r.body));
    } catch (x) { replace(out, errorBox(x)); }
  } }, h('h2', {}, 'Invoke'),
  field('Request body', body), field('Content type', type), out,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Invoke')));
}

export async function functionPage(ctx, pid, name) {
  const base = api.p('projects', pid, 'functions', name);
  const project = await api.get(api.p('projects', pid));
  const facts = h('div', {});
  let fn = await api.get(base);
  await ctx.every(3000, async () => {
    try {
      fn = await api.get(base);
      const sd = fn.status_details || {};
      replace(facts, h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', {}, badge(fn.status), sd.reason && sd.reason !== fn.status ? ` ${sd.reason}` : ''),
        h('dt', {}, 'URL'), h('dd', {}, fn.endpoint ? h('a', { href: fn.endpoint, rel: 'noopener noreferrer', target: '_blank' }, fn.endpoint) : ''),
        h('dt', {}, 'Runtime'), h('dd', {}, fn.runtime || ''),
        h('dt', {}, 'Created'), h('dd', {}, when(fn.created_at))));
    } catch (e) { replace(facts, errorBox(e)); }
  });
  let code = '';
  const m = /^data:text\/plain;base64,(.*)$/.exec(fn.code_reference || '');
  if (m) { try { code = unb64(m[1]); } catch (e) { code = ''; } }
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / ',
      h('a', { href: `#/projects/${encodeURIComponent(pid)}/functions` }, project.name), ' / ', name),
    h('h1', {}, `Function ${name}`), facts,
    api.can('writer') ? invokeForm(base) : null,
    m ? [h('h2', {}, 'Code'), h('pre', { class: 'logs', tabindex: '0', 'aria-label': 'Code' }, code)] : h('p', {}, `Code from ${fn.code_reference || ''}`),
    api.can('writer') ? h('div', { class: 'card' }, h('h2', {}, 'Delete'), h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!await confirmPlain(`Delete function ${name}?`, 'Its URL stops answering.', 'Delete')) return;
      try { await api.call('DELETE', base); location.hash = `#/projects/${encodeURIComponent(pid)}/functions`; } catch (e) { replace(facts, errorBox(e)); }
    } }, `Delete function ${name}`)) : null);
}
