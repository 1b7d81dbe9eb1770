// Tokens (create, shown once; list; revoke) and the audit log with the
// server's verification of its hash chain.
import { h, replace, field, table, when, errorBox, announce, confirmPlain } from './dom.js';
import * as api from './api.js';

export async function tokensPage(ctx) {
  const body = h('div', {});
  const err = h('div', {});
  const created = h('div', { 'aria-live': 'polite' });
  const refresh = async () => {
    try {
      const toks = (await api.get('/v2/tokens')).tokens || [];
      replace(body, table('Tokens', [
        ['Name', (t) => t.name], ['Role', (t) => t.role], ['Project', (t) => t.project_id || 'all (admin)'],
        ['Created', (t) => when(t.created_at)],
        ['Actions', (t) => h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke token ${t.name}`, onclick: async () => {
          if (!await confirmPlain(`Revoke token ${t.name}?`, 'Everything that uses it, and every console session made with it, stops working at once.', 'Revoke')) return;
          try { await api.call('DELETE', `/v2/tokens/${encodeURIComponent(t.id)}`); announce(`Token ${t.name} revoked`); await refresh(); } catch (e) { replace(err, errorBox(e)); }
        } }, 'Revoke')],
      ], toks, 'No tokens.'));
    } catch (e) { replace(body, errorBox(e)); }
  };
  await refresh();
  let projects = [];
  try { projects = await api.list('/v2/projects', 'projects'); } catch (e) { /* shown in the list */ }
  const name = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const role = h('select', {}, ['reader', 'writer', 'manager'].concat(api.can('admin') ? ['admin'] : []).map((r) => h('option', { value: r }, r)));
  const project = h('select', {}, projects.map((p) => h('option', { value: p.id }, p.name)));
  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    replace(created);
    try {
      const t = await api.call('POST', '/v2/tokens', { name: name.value, role: role.value, project_id: role.value === 'admin' ? undefined : project.value });
      const shown = h('input', { type: 'text', readonly: true, value: t.token, class: 'code', spellcheck: 'false' });
      replace(created, h('div', { class: 'notice', role: 'alert' }, h('p', {}, `Token ${t.name} created. Copy it now: it is shown this once and never again.`),
        field('New token', shown), h('button', { type: 'button', onclick: () => replace(created) }, 'I have copied it')));
      shown.select();
      name.value = '';
      await refresh();
    } catch (x) { replace(err, errorBox(x)); }
  } }, h('h2', {}, 'Create a token'),
  h('div', { class: 'grid' }, field('Name', name), field('Role', role), field('Project', project, 'Admin tokens have no project.')),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create token')));
  return h('section', {}, h('h1', {}, 'Tokens'), err, created, body, form);
}

export async function auditPage(ctx) {
  const verify = h('div', {});
  const body = h('div', {});
  if (api.can('admin')) {
    try {
      const v = await api.get('/v2/audit_events/verify');
      replace(verify, h('p', { class: v.valid ? 'notice ok' : 'error', role: 'status' },
        v.valid ? `The log's hash chain is intact: ${v.entries} entries verified (${v.first_seq}–${v.last_seq}).` : `The log does not verify: ${v.problem}`));
    } catch (e) { replace(verify, errorBox(e)); }
  }
  await ctx.every(5000, async () => {
    try {
      const evs = await api.list('/v2/audit_events', 'audit_events');
      evs.sort((a, b) => b.seq - a.seq);
      replace(body, table('Audit events', [
        ['#', (e) => String(e.seq)], ['Time', (e) => when(e.time)], ['Actor', (e) => e.actor], ['Action', (e) => e.action],
        ['Outcome', (e) => e.outcome || ''], ['Project', (e) => e.project_id || ''], ['Target', (e) => e.target_name || e.target || ''],
      ], evs.slice(0, 200), 'No events.'));
    } catch (e) { replace(body, errorBox(e)); }
  });
  return h('section', {}, h('h1', {}, 'Audit log'), verify, body);
}
