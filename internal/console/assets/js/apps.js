// Applications: the list with status and URL, create from an image, and an
// app's page: status, URL, revisions, instances, logs, and its settings.
import { h, replace, field, table, badge, when, errorBox, announce, confirmPlain, chart } from './dom.js';
import * as api from './api.js';
import { logView } from './logs.js';

const appHref = (pid, name) => `#/projects/${encodeURIComponent(pid)}/apps/${encodeURIComponent(name)}`;

export async function appsTab(ctx, project) {
  const body = h('div', {});
  const refresh = async () => {
    try {
      const apps = await api.list(api.p('projects', project.id, 'apps'), 'apps');
      replace(body, table('Applications', [
        ['Name', (a) => h('a', { href: appHref(project.id, a.name) }, a.name)],
        ['Status', (a) => badge(a.status)],
        ['URL', (a) => a.endpoint ? h('a', { href: a.endpoint, rel: 'noopener noreferrer', target: '_blank' }, a.endpoint) : 'project only'],
        ['Instances', (a) => String((a.status_details && a.status_details.actual_instances) || 0)],
        ['Image', (a) => a.image_reference || ''],
        ['Created', (a) => when(a.created_at)],
      ], apps, 'No applications yet.'));
    } catch (e) { replace(body, errorBox(e)); }
  };
  await ctx.every(3000, refresh);
  return h('div', {}, body, api.can('writer') ? createAppForm(project, refresh) : null);
}

function num(input) { return input.value === '' ? undefined : Number(input.value); }

// words splits a command line on spaces; none is undefined (the image's).
export function words(s) { return s.trim() ? s.trim().split(/\s+/) : undefined; }

function createAppForm(project, refresh) {
  const name = h('input', { type: 'text', required: true, maxlength: 63, autocomplete: 'off', pattern: '[a-z0-9]([\\-a-z0-9]*[a-z0-9])?' });
  // A build run's page links here with the image it built.
  const built = new URLSearchParams(location.hash.split('?')[1] || '').get('image') || '';
  const image = h('input', { type: 'text', required: true, autocomplete: 'off', placeholder: 'registry.example.com/team/app:1.0', value: built });
  const secret = h('input', { type: 'text', autocomplete: 'off' });
  const port = h('input', { type: 'number', min: 1, max: 65535, placeholder: '8080' });
  const command = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const cpu = h('input', { type: 'text', placeholder: '1', autocomplete: 'off' });
  const mem = h('input', { type: 'text', placeholder: '4G', autocomplete: 'off' });
  const min = h('input', { type: 'number', min: 0, placeholder: '0' });
  const max = h('input', { type: 'number', min: 1, placeholder: '10' });
  const err = h('div', {});
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    const body = { name: name.value, image_reference: image.value, image_secret: secret.value || undefined,
      image_port: num(port), scale_min_instances: num(min), scale_max_instances: num(max),
      run_commands: words(command.value), scale_cpu_limit: cpu.value || undefined, scale_memory_limit: mem.value || undefined };
    try {
      const a = await api.call('POST', api.p('projects', project.id, 'apps'), body);
      announce(`Application ${a.name} created`);
      location.hash = appHref(project.id, a.name);
    } catch (x) { replace(err, errorBox(x)); await refresh(); }
  } }, h('h2', {}, 'Create an application'),
  h('div', { class: 'grid' },
    field('Name', name, 'Lower case letters, digits and dashes.'),
    field('Image', image),
    field('Registry secret', secret, 'A secret of format registry, when the image is private.'),
    field('Port', port),
    field('Command', command, 'Overrides the image\'s entrypoint; separated by spaces.'),
    field('CPU', cpu), field('Memory', mem),
    field('Min instances', min),
    field('Max instances', max)),
  err, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create application')));
}

export async function appPage(ctx, pid, name) {
  const base = api.p('projects', pid, 'apps', name);
  const project = await api.get(api.p('projects', pid));
  const summary = h('div', {});
  const revisions = h('div', {});
  const instances = h('div', {});
  const charts = h('div', { class: 'charts' });
  let app = await api.get(base);
  const refresh = async () => {
    try {
      app = await api.get(base);
      const sd = app.status_details || {};
      replace(summary, h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', {}, badge(app.status), sd.reason && sd.reason !== app.status ? ` ${sd.reason}` : '', sd.message ? ` — ${sd.message}` : ''),
        h('dt', {}, 'URL'), h('dd', {}, app.endpoint ? h('a', { href: app.endpoint, rel: 'noopener noreferrer', target: '_blank' }, app.endpoint) : 'project only'),
        h('dt', {}, 'Internal URL'), h('dd', {}, app.endpoint_internal || ''),
        h('dt', {}, 'Image'), h('dd', {}, app.image_reference || ''),
        h('dt', {}, 'Latest revision'), h('dd', {}, sd.latest_ready_revision || sd.latest_created_revision || ''),
        h('dt', {}, 'Scale'), h('dd', {}, `${app.scale_min_instances ?? 0}–${app.scale_max_instances ?? ''} instances, concurrency ${app.scale_concurrency ?? ''}, ${app.scale_cpu_limit || ''} CPU, ${app.scale_memory_limit || ''} memory`)));
      const revs = await api.list(`${base}/revisions`, 'revisions');
      replace(revisions, table('Revisions', [
        ['Revision', (r) => r.name], ['Status', (r) => badge(r.status)],
        ['Traffic', (r) => r.name === sd.latest_ready_revision ? '100%' : '0%'],
        ['Instances', (r) => String((r.status_details && r.status_details.actual_instances) || 0)],
        ['Created', (r) => when(r.created_at)]], revs, 'No revisions yet.'));
      const ins = await api.list(`${base}/instances`, 'instances');
      replace(instances, table('Instances', [
        ['Instance', (i) => i.name], ['Revision', (i) => i.revision_name], ['Status', (i) => badge(i.status)],
        ['Ready', (i) => (i.status_details && i.status_details.ready) ? 'yes' : 'no'],
        ['Restarts', (i) => String((i.status_details && i.status_details.restarts) || 0)],
        ['Started', (i) => when(i.created_at)]], ins, 'No instances: the app is scaled to zero.'));
      const m = await api.get(`${base}/metrics`);
      const pts = (m.points || []).map((p) => ({ t: Date.parse(p.time), i: p.instances, r: p.requests_per_second }));
      const now = pts.length ? Math.max(Date.now(), pts[pts.length - 1].t) : Date.now();
      replace(charts, chart('Ready instances', 'instances', pts.map((p) => ({ t: p.t, v: p.i })), now),
        chart('Requests per second', 'requests/s', pts.map((p) => ({ t: p.t, v: p.r })), now));
    } catch (e) { replace(summary, errorBox(e)); }
  };
  await ctx.every(3000, refresh);
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / ',
      h('a', { href: `#/projects/${encodeURIComponent(pid)}/apps` }, project.name), ' / ', name),
    h('h1', {}, `Application ${name}`),
    summary,
    h('h2', {}, 'Load over the last hour'), charts,
    h('h2', {}, 'Revisions and traffic'), revisions,
    h('h2', {}, 'Instances'), instances,
    h('h2', {}, 'Logs'), logView(ctx, `${base}/logs`, `Logs of application ${name}`),
    api.can('writer') ? settingsForm(base, () => app, refresh) : null,
    api.can('writer') ? h('div', { class: 'card' }, h('h2', {}, 'Delete'), h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!await confirmPlain(`Delete application ${name}?`, 'Its instances stop and its URL stops answering.', 'Delete')) return;
      try { await api.call('DELETE', base); location.hash = `#/projects/${encodeURIComponent(pid)}/apps`; } catch (e) { replace(summary, errorBox(e)); }
    } }, `Delete application ${name}`)) : null);
}

function envText(app) {
  return (app.run_env_variables || []).filter((e) => (e.type || 'literal') === 'literal').map((e) => `${e.name}=${e.value ?? ''}`).join('\n');
}

// settingsForm changes scale, resources and literal environment variables
// with a merge patch; the API's validation messages are shown as they come.
function settingsForm(base, current, refresh) {
  const app = current();
  const min = h('input', { type: 'number', min: 0, value: app.scale_min_instances ?? 0 });
  const max = h('input', { type: 'number', min: 1, value: app.scale_max_instances ?? '' });
  const conc = h('input', { type: 'number', min: 1, value: app.scale_concurrency ?? '' });
  const cpu = h('input', { type: 'text', value: app.scale_cpu_limit || '' });
  const mem = h('input', { type: 'text', value: app.scale_memory_limit || '' });
  const image = h('input', { type: 'text', value: app.image_reference || '' });
  const env = h('textarea', { rows: 4, spellcheck: 'false', value: envText(app) });
  const err = h('div', {});
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    const vars = [];
    for (const line of env.value.split('\n')) {
      if (!line.trim()) continue;
      const i = line.indexOf('=');
      if (i < 1) { replace(err, errorBox(new Error(`Environment variables: "${line}" is not NAME=value`))); return; }
      vars.push({ type: 'literal', name: line.slice(0, i), value: line.slice(i + 1) });
    }
    const others = (current().run_env_variables || []).filter((v) => (v.type || 'literal') !== 'literal');
    const patch = { image_reference: image.value, scale_min_instances: num(min), scale_max_instances: num(max),
      scale_concurrency: num(conc), scale_cpu_limit: cpu.value || undefined, scale_memory_limit: mem.value || undefined,
      run_env_variables: others.concat(vars) };
    try {
      await api.call('PATCH', base, patch, { type: 'application/merge-patch+json', ifMatch: current().entity_tag });
      announce('Application updated');
      await refresh();
    } catch (x) { replace(err, errorBox(x)); }
  } }, h('h2', {}, 'Settings'),
  h('div', { class: 'grid' },
    field('Image', image), field('Min instances', min), field('Max instances', max),
    field('Concurrency', conc, 'Requests one instance serves at once.'), field('CPU', cpu, 'e.g. 0.5, 1, 2'), field('Memory', mem, 'e.g. 1G, 4G')),
  field('Environment variables', env, 'One NAME=value per line. Variables from secrets and config maps are kept.'),
  err, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save changes')));
}
