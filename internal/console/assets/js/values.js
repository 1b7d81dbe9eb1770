// Secrets and config maps: the list, create, and a page to read and edit
// one. A secret's values stay masked until the user reveals them, which
// the server records in the audit log as a read; a reader never gets them.
import { h, replace, field, table, when, errorBox, announce, confirmPlain } from './dom.js';
import * as api from './api.js';

const words = { secrets: ['Secrets', 'secret'], config_maps: ['Config maps', 'config map'] };
const href = (pid, kind, name) => `#/projects/${encodeURIComponent(pid)}/${kind}/${encodeURIComponent(name)}`;

export async function valuesTab(ctx, project, kind) {
  const body = h('div', {});
  const refresh = async () => {
    try {
      const items = await api.list(api.p('projects', project.id, kind), kind);
      replace(body, table(words[kind][0], [
        ['Name', (s) => h('a', { href: href(project.id, kind, s.name) }, s.name)],
        kind === 'secrets' ? ['Format', (s) => s.format] : ['Keys', (s) => String(Object.keys(s.data || {}).length)],
        ['Created', (s) => when(s.created_at)],
      ], items, `No ${words[kind][0].toLowerCase()} yet.`));
    } catch (e) { replace(body, errorBox(e)); }
  };
  await ctx.every(5000, refresh);
  return h('div', {}, body, api.can('writer') ? editor(project.id, kind, null, async (name) => {
    location.hash = href(project.id, kind, name);
  }) : null);
}

// rows is an editable list of key and value pairs.
function rows(data, secret) {
  const list = h('div', { class: 'kv' });
  const addRow = (k = '', v = '') => {
    const key = h('input', { type: 'text', value: k, autocomplete: 'off', spellcheck: 'false' });
    const val = h(secret ? 'input' : 'textarea', secret ? { type: 'password', value: v, autocomplete: 'new-password' } : { rows: 1, value: v, spellcheck: 'false' });
    const row = h('div', { class: 'kv-row' }, field('Key', key), field('Value', val),
      h('button', { type: 'button', onclick: () => row.remove(), 'aria-label': 'Remove this key' }, 'Remove'));
    list.append(row);
  };
  for (const [k, v] of Object.entries(data || {})) addRow(k, v);
  if (!Object.keys(data || {}).length) addRow();
  const read = () => {
    const out = {};
    for (const row of list.querySelectorAll('.kv-row')) {
      const [k, v] = row.querySelectorAll('input, textarea');
      if (k.value) out[k.value] = v.value;
    }
    return out;
  };
  return { node: h('div', {}, list, h('button', { type: 'button', onclick: () => addRow() }, 'Add a key')), read };
}

// editor creates (current null) or replaces a secret or config map.
function editor(pid, kind, current, done) {
  const secret = kind === 'secrets';
  const name = h('input', { type: 'text', required: true, autocomplete: 'off', value: current ? current.name : '', readonly: !!current });
  const kv = rows(current ? current.data : null, secret);
  // A new secret's format: generic, or registry (pull credentials: server,
  // username, password, optional email).
  const format = h('select', {}, h('option', { value: 'generic' }, 'generic'), h('option', { value: 'registry' }, 'registry'));
  const err = h('div', {});
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    try {
      if (current) {
        const body = secret ? { format: current.format, data: kv.read() } : { data: kv.read() };
        await api.call('PUT', api.p('projects', pid, kind, current.name), body, { ifMatch: current.entity_tag });
      } else {
        const body = secret ? { name: name.value, format: format.value, data: kv.read() } : { name: name.value, data: kv.read() };
        await api.call('POST', api.p('projects', pid, kind), body);
      }
      announce(`${words[kind][1]} ${name.value} saved`);
      await done(name.value);
    } catch (x) { replace(err, errorBox(x)); }
  } }, h('h2', {}, current ? `Edit ${words[kind][1]} ${current.name}` : `Create a ${words[kind][1]}`),
  current ? null : field('Name', name),
  secret && !current ? field('Format', format, 'A registry secret holds the keys server, username, password and optionally email.') : null,
  kv.node, err,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, current ? 'Save' : `Create ${words[kind][1]}`)));
}

export async function valuesPage(ctx, pid, kind, name) {
  const secret = kind === 'secrets';
  const base = api.p('projects', pid, kind, name);
  const project = await api.get(api.p('projects', pid));
  const view = h('div', {});
  const edit = h('div', {});
  const err = h('div', {});
  const show = (item, revealed) => {
    replace(view, table('Keys', [
      ['Key', ([k]) => k],
      ['Value', ([, v]) => secret && !revealed ? h('span', { class: 'masked', 'aria-label': 'hidden value' }, '••••••••') : h('code', { class: 'value' }, v)],
    ], Object.entries(item.data || {}), 'No keys.'));
  };
  // A secret is first read with redact=true: keys only, no audited read.
  let item = await api.get(secret ? `${base}?redact=true` : base);
  show(item, false);
  const reveal = secret && api.can('writer') ? h('button', { type: 'button', onclick: async () => {
    replace(err);
    try {
      item = await api.get(base);
      show(item, true);
      replace(edit, editor(pid, kind, item, async () => { window.dispatchEvent(new HashChangeEvent('hashchange')); }));
      announce('Values revealed; the audit log records this read');
      reveal.remove();
    } catch (e) { replace(err, errorBox(e)); }
  } }, 'Reveal values') : null;
  if (!secret && api.can('writer')) replace(edit, editor(pid, kind, item, async () => { window.dispatchEvent(new HashChangeEvent('hashchange')); }));
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / ',
      h('a', { href: `#/projects/${encodeURIComponent(pid)}/${kind}` }, project.name), ' / ', name),
    h('h1', {}, `${secret ? 'Secret' : 'Config map'} ${name}`),
    secret ? h('p', { class: 'meta' }, `Format ${item.format}. `, api.can('writer') ? 'Values are hidden until you reveal them; revealing is recorded in the audit log.' : 'Your role may not read values.') : null,
    err, view, reveal, edit,
    api.can('writer') ? h('div', { class: 'card' }, h('h2', {}, 'Delete'), h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!await confirmPlain(`Delete ${words[kind][1]} ${name}?`, 'Apps and jobs that use it will fail to start new instances.', 'Delete')) return;
      try { await api.call('DELETE', base); location.hash = `#/projects/${encodeURIComponent(pid)}/${kind}`; } catch (e) { replace(err, errorBox(e)); }
    } }, `Delete ${words[kind][1]} ${name}`)) : null);
}
