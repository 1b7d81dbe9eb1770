// Domain mappings: the list with status, and a form that maps a domain to
// an app or a function, with a TLS secret or (when the server has ACME) a
// certificate it obtains.
import { h, replace, field, table, badge, when, errorBox, announce, confirmPlain } from './dom.js';
import * as api from './api.js';

export async function domainsTab(ctx, project) {
  const body = h('div', {});
  const err = h('div', {});
  const refresh = async () => {
    try {
      const ds = await api.list(api.p('projects', project.id, 'domain_mappings'), 'domain_mappings');
      replace(body, table('Domain mappings', [
        ['Domain', (d) => d.name],
        ['Status', (d) => [badge(d.status), d.status_details && d.status_details.message ? ` ${d.status_details.message}` : '']],
        ['Target', (d) => d.component ? `${d.component.resource_type === 'function_v2' ? 'function' : 'app'} ${d.component.name}` : ''],
        ['CNAME target', (d) => d.cname_target || ''], ['TLS secret', (d) => d.tls_secret || '(ACME)'], ['Created', (d) => when(d.created_at)],
        ['Actions', (d) => api.can('writer') ? h('button', { type: 'button', 'aria-label': `Delete domain mapping ${d.name}`, onclick: async () => {
          if (!await confirmPlain(`Delete the mapping of ${d.name}?`, 'The domain stops being served.', 'Delete')) return;
          try { await api.call('DELETE', api.p('projects', project.id, 'domain_mappings', d.name)); await refresh(); } catch (e) { replace(err, errorBox(e)); }
        } }, 'Delete') : ''],
      ], ds, 'No domain mappings yet.'));
    } catch (e) { replace(body, errorBox(e)); }
  };
  await ctx.every(3000, refresh);
  return h('div', {}, err, body, api.can('writer') ? createForm(project, refresh) : null);
}

function createForm(project, refresh) {
  const name = h('input', { type: 'text', required: true, autocomplete: 'off', placeholder: 'www.example.com' });
  const kind = h('select', {}, h('option', { value: 'app_v2' }, 'app'), h('option', { value: 'function_v2' }, 'function'));
  const target = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const secret = h('input', { type: 'text', autocomplete: 'off' });
  const err = h('div', {});
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    try {
      await api.call('POST', api.p('projects', project.id, 'domain_mappings'), { name: name.value,
        component: { resource_type: kind.value, name: target.value }, tls_secret: secret.value || undefined });
      announce(`Domain ${name.value} mapped`);
      name.value = '';
      await refresh();
    } catch (x) { replace(err, errorBox(x)); }
  } }, h('h2', {}, 'Map a domain'),
  h('div', { class: 'grid' }, field('Domain', name), field('Kind', kind), field('App or function', target),
    field('TLS secret', secret, 'A secret of format tls for the domain; empty gets a certificate by ACME when the server has it.')),
  err, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Map domain')));
}
