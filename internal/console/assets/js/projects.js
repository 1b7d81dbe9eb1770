// Projects: the list (with soft-deleted ones to restore), create, soft and
// hard delete with the name typed to confirm; a project's page with its tabs.
import { h, replace, field, table, badge, when, errorBox, announce, confirmTyped } from './dom.js';
import * as api from './api.js';
import { appsTab } from './apps.js';
import { jobsTab, runsTab } from './jobs.js';
import { valuesTab } from './values.js';
import { functionsTab } from './functions.js';
import { domainsTab } from './domains.js';
import { buildsTab } from './builds.js';

export async function projectsPage(ctx) {
  const body = h('div', {});
  const err = h('div', {});
  const refresh = async () => {
    try {
      const ps = await api.list('/v2/projects?include_deleted=true', 'projects');
      replace(err);
      replace(body, table('Projects', [
        ['Name', (p) => p.status === 'soft_deleted' ? p.name : h('a', { href: `#/projects/${encodeURIComponent(p.id)}` }, p.name)],
        ['Status', (p) => badge(p.status)],
        ['Created', (p) => when(p.created_at)],
        ['Hard delete at', (p) => when(p.hard_delete_at)],
        ['Actions', (p) => projectActions(p, refresh, err)],
      ], ps, 'No projects yet.'));
    } catch (e) { replace(err, errorBox(e)); }
  };
  const page = h('section', {}, h('h1', {}, 'Projects'), err, body, api.can('admin') ? createForm(refresh) : null);
  await ctx.every(3000, refresh);
  return page;
}

function projectActions(p, refresh, err) {
  if (!api.can('manager')) return '';
  const act = (label, cls, fn) => h('button', { type: 'button', class: cls, onclick: async () => {
    try { if (await fn()) { announce(`${label}: ${p.name}`); await refresh(); } } catch (e) { replace(err, errorBox(e)); }
  }, 'aria-label': `${label} project ${p.name}` }, label);
  const hard = act('Hard delete', 'danger', async () => {
    if (!await confirmTyped(`Hard delete ${p.name}?`, 'This destroys the project\'s key and with it every secret, app, job and record of the project, now. It cannot be undone.', p.name, 'Hard delete')) return false;
    await api.call('DELETE', `${api.p('projects', p.id)}?hard=true`);
    return true;
  });
  if (p.status === 'soft_deleted') {
    return h('span', { class: 'row-actions' }, act('Restore', '', async () => { await api.call('POST', `${api.p('projects', p.id)}/restore`); return true; }), hard);
  }
  return h('span', { class: 'row-actions' }, act('Delete', '', async () => {
    if (!await confirmTyped(`Delete ${p.name}?`, 'The project stops serving and is kept for the retention period, when it can be restored; after that it is hard deleted.', p.name, 'Delete')) return false;
    await api.call('DELETE', api.p('projects', p.id));
    return true;
  }), hard);
}

function createForm(refresh) {
  const name = h('input', { type: 'text', required: true, maxlength: 128, autocomplete: 'off' });
  const err = h('div', {});
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    try {
      const p = await api.call('POST', '/v2/projects', { name: name.value });
      announce(`Project ${p.name} created`);
      name.value = '';
      await refresh();
    } catch (x) { replace(err, errorBox(x)); }
  } }, h('h2', {}, 'Create a project'), field('Name', name, '1–128 characters, unique.'), err,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create project')));
}

const tabs = [
  ['apps', 'Applications', appsTab],
  ['jobs', 'Jobs', jobsTab],
  ['runs', 'Job runs', runsTab],
  ['functions', 'Functions', functionsTab],
  ['builds', 'Builds', buildsTab],
  ['secrets', 'Secrets', (c, p) => valuesTab(c, p, 'secrets')],
  ['config_maps', 'Config maps', (c, p) => valuesTab(c, p, 'config_maps')],
  ['domains', 'Domain mappings', domainsTab],
];

export async function projectPage(ctx, id, tab) {
  const t = tabs.find(([k]) => k === tab) || tabs[0];
  // The project and the tab's first list load at once.
  const [project, panel] = await Promise.all([api.get(api.p('projects', id)), t[2](ctx, { id })]);
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / ', project.name),
    h('h1', {}, `${project.name}: ${t[1]}`),
    h('p', { class: 'meta' }, badge(project.status), ` Region ${project.region} · created `, when(project.created_at)),
    h('nav', { 'aria-label': 'Project', class: 'tabs' }, h('ul', {}, tabs.map(([k, label]) => h('li', {},
      h('a', { href: `#/projects/${encodeURIComponent(id)}/${k}`, 'aria-current': k === t[0] ? 'page' : null }, label))))),
    h('div', { class: 'panel' }, panel));
}
