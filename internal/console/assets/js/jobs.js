// Jobs and job runs: the jobs, create one, submit a run; the runs with
// their progress; a run's page with a grid of its indices and their logs.
import { h, replace, field, table, badge, when, errorBox, announce } from './dom.js';
import * as api from './api.js';
import { logView } from './logs.js';
import { words } from './apps.js';

const runHref = (pid, name) => `#/projects/${encodeURIComponent(pid)}/runs/${encodeURIComponent(name)}`;

export async function jobsTab(ctx, project) {
  const body = h('div', {});
  const err = h('div', {});
  const refresh = async () => {
    try {
      const jobs = await api.list(api.p('projects', project.id, 'jobs'), 'jobs');
      replace(body, table('Jobs', [
        ['Name', (j) => j.name], ['Image', (j) => j.image_reference || ''],
        ['Array', (j) => j.scale_array_spec || '0'], ['Created', (j) => when(j.created_at)],
        ['Actions', (j) => api.can('writer') ? h('button', { type: 'button', 'aria-label': `Submit a run of job ${j.name}`, onclick: async () => {
          try {
            const run = await api.call('POST', api.p('projects', project.id, 'job_runs'), { job_name: j.name });
            announce(`Job run ${run.name} submitted`);
            location.hash = runHref(project.id, run.name);
          } catch (e) { replace(err, errorBox(e)); }
        } }, 'Submit run') : ''],
      ], jobs, 'No jobs yet.'));
    } catch (e) { replace(body, errorBox(e)); }
  };
  await ctx.every(5000, refresh);
  return h('div', {}, err, body, api.can('writer') ? createJobForm(project, refresh) : null);
}

function createJobForm(project, refresh) {
  const name = h('input', { type: 'text', required: true, maxlength: 63, autocomplete: 'off' });
  const image = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const array = h('input', { type: 'text', placeholder: '0', autocomplete: 'off' });
  const command = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const args = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const secret = h('input', { type: 'text', autocomplete: 'off' });
  const cpu = h('input', { type: 'text', placeholder: '1', autocomplete: 'off' });
  const mem = h('input', { type: 'text', placeholder: '4G', autocomplete: 'off' });
  const err = h('div', {});
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    const body = { name: name.value, image_reference: image.value, scale_array_spec: array.value || undefined,
      image_secret: secret.value || undefined, run_commands: words(command.value), run_arguments: words(args.value),
      scale_cpu_limit: cpu.value || undefined, scale_memory_limit: mem.value || undefined };
    try {
      await api.call('POST', api.p('projects', project.id, 'jobs'), body);
      announce(`Job ${name.value} created`);
      name.value = '';
      await refresh();
    } catch (x) { replace(err, errorBox(x)); }
  } }, h('h2', {}, 'Create a job'),
  h('div', { class: 'grid' }, field('Name', name), field('Image', image),
    field('Registry secret', secret, 'A secret of format registry, when the image is private.'),
    field('Array indices', array, 'e.g. 0-9 or 1,3,5-7'),
    field('Command', command, 'Overrides the image\'s entrypoint; separated by spaces.'), field('Arguments', args, 'Separated by spaces.'),
    field('CPU', cpu), field('Memory', mem)),
  err, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create job')));
}

function progress(run) {
  const sd = run.status_details || {};
  const total = sd.requested || 0;
  const done = (sd.succeeded || 0) + (sd.failed || 0);
  return h('span', { class: 'progress' },
    h('progress', { max: total || 1, value: done, 'aria-label': `Run ${run.name}: ${done} of ${total} indices done` }),
    ` ${sd.succeeded || 0} succeeded, ${sd.failed || 0} failed, ${sd.running || 0} running, ${sd.pending || 0} pending`);
}

export async function runsTab(ctx, project) {
  const body = h('div', {});
  await ctx.every(3000, async () => {
    try {
      const runs = await api.list(api.p('projects', project.id, 'job_runs'), 'job_runs');
      replace(body, table('Job runs', [
        ['Name', (r) => h('a', { href: runHref(project.id, r.name) }, r.name)],
        ['Job', (r) => r.job_name || ''], ['Status', (r) => badge(r.status)],
        ['Progress', progress], ['Created', (r) => when(r.created_at)],
      ], runs, 'No job runs yet.'));
    } catch (e) { replace(body, errorBox(e)); }
  });
  return body;
}

export async function jobRunPage(ctx, pid, name) {
  const base = api.p('projects', pid, 'job_runs', name);
  const project = await api.get(api.p('projects', pid));
  const head = h('div', {});
  const grid = h('div', {});
  const failures = h('div', {});
  const indexSel = h('select', {});
  const logs = h('div', {});
  let known = '';
  const refresh = async () => {
    try {
      const run = await api.get(base);
      const sd = run.status_details || {};
      replace(head, h('p', {}, badge(run.status), sd.reason ? ` ${sd.reason} ` : ' ', progress(run)),
        h('p', { class: 'meta' }, 'Started ', when(sd.start_time), sd.completion_time ? [' · completed ', when(sd.completion_time)] : ''));
      const idx = Object.entries(sd.indices_details || {}).sort((a, b) => Number(a[0]) - Number(b[0]));
      replace(grid, h('ul', { class: 'indices', 'aria-label': 'Indices' }, idx.map(([i, d]) =>
        h('li', { class: `index ${String(d.status).toLowerCase()}`, title: `index ${i}: ${d.status}${d.retries ? `, ${d.retries} retries` : ''}${d.last_failure_reason ? `, ${d.last_failure_reason}` : ''}` },
          h('span', { class: 'n' }, i), h('span', { class: 'visually-hidden' }, ` ${d.status}`)))));
      replace(failures, table('Indices that failed or were retried', [
        ['Index', ([i]) => i], ['Status', ([, d]) => badge(d.status)], ['Retries', ([, d]) => String(d.retries || 0)],
        ['Reason', ([, d]) => d.last_failure_reason || '']],
      idx.filter(([, d]) => d.retries || d.last_failure_reason), 'No index failed.'));
      const list = idx.map(([i]) => i).join(',');
      if (list !== known) {
        known = list;
        const was = indexSel.value;
        replace(indexSel, idx.map(([i]) => h('option', { value: i }, `Index ${i}`)));
        if (was) indexSel.value = was;
      }
    } catch (e) { replace(head, errorBox(e)); }
  };
  await ctx.every(2000, refresh);
  const showLogs = () => replace(logs, logView(ctx, `${base}/logs?index=${encodeURIComponent(indexSel.value)}`, `Logs of index ${indexSel.value}`));
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / ',
      h('a', { href: `#/projects/${encodeURIComponent(pid)}/runs` }, project.name), ' / ', name),
    h('h1', {}, `Job run ${name}`), head,
    h('h2', {}, 'Indices'), grid,
    h('p', { class: 'legend' }, h('span', { class: 'index succeeded' }, ''), ' succeeded ', h('span', { class: 'index failed' }, ''), ' failed ',
      h('span', { class: 'index running' }, ''), ' running ', h('span', { class: 'index pending' }, ''), ' pending'),
    failures,
    h('h2', {}, 'Logs'),
    h('div', { class: 'actions' }, h('label', { for: (indexSel.id = 'index-select') }, 'Index'), indexSel,
      h('button', { type: 'button', onclick: showLogs }, 'Show logs of this index')),
    logs);
}
