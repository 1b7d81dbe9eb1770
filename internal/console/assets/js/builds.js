// Builds: the build configurations (create one from a Git repository and
// a Dockerfile), submit a run of one, and a run's page that follows its
// log and links to the image it built.
import { h, replace, field, table, badge, when, errorBox, announce } from './dom.js';
import * as api from './api.js';
import { logView } from './logs.js';

const runHref = (pid, name) => `#/projects/${encodeURIComponent(pid)}/build_runs/${encodeURIComponent(name)}`;

export async function buildsTab(ctx, project) {
  const builds = h('div', {});
  const runs = h('div', {});
  const err = h('div', {});
  const refresh = async () => {
    try {
      const bs = await api.list(api.p('projects', project.id, 'builds'), 'builds');
      replace(builds, table('Builds', [
        ['Name', (b) => b.name], ['Source', (b) => b.source_url || ''], ['Output image', (b) => b.output_image || ''],
        ['Status', (b) => badge(b.status)],
        ['Actions', (b) => api.can('writer') ? h('button', { type: 'button', 'aria-label': `Submit a run of build ${b.name}`, onclick: async () => {
          try {
            const r = await api.call('POST', api.p('projects', project.id, 'build_runs'), { build_name: b.name });
            announce(`Build run ${r.name} submitted`);
            location.hash = runHref(project.id, r.name);
          } catch (e) { replace(err, errorBox(e)); }
        } }, 'Submit run') : ''],
      ], bs, 'No builds yet.'));
      const rs = await api.list(api.p('projects', project.id, 'build_runs'), 'build_runs');
      replace(runs, table('Build runs', [
        ['Name', (r) => h('a', { href: runHref(project.id, r.name) }, r.name)], ['Build', (r) => r.build_name || ''],
        ['Status', (r) => badge(r.status)], ['Created', (r) => when(r.created_at)],
      ], rs, 'No build runs yet.'));
    } catch (e) { replace(builds, errorBox(e)); }
  };
  await ctx.every(3000, refresh);
  return h('div', {}, err, h('h2', {}, 'Builds'), builds, h('h2', {}, 'Build runs'), runs, api.can('writer') ? createForm(project, refresh) : null);
}

function createForm(project, refresh) {
  const name = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const source = h('input', { type: 'url', required: true, autocomplete: 'off', placeholder: 'https://github.com/org/repo' });
  const revision = h('input', { type: 'text', autocomplete: 'off', placeholder: 'main' });
  const dir = h('input', { type: 'text', autocomplete: 'off' });
  const image = h('input', { type: 'text', required: true, autocomplete: 'off', placeholder: 'registry.example.com/team/app:latest' });
  const secret = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const err = h('div', {});
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    replace(err);
    try {
      await api.call('POST', api.p('projects', project.id, 'builds'), { name: name.value, source_type: 'git', source_url: source.value,
        source_revision: revision.value || undefined, source_context_dir: dir.value || undefined, strategy_type: 'dockerfile',
        output_image: image.value, output_secret: secret.value });
      announce(`Build ${name.value} created`);
      name.value = '';
      await refresh();
    } catch (x) { replace(err, errorBox(x)); }
  } }, h('h2', {}, 'Create a build'),
  h('div', { class: 'grid' }, field('Name', name), field('Git repository', source), field('Branch or commit', revision),
    field('Context directory', dir), field('Output image', image), field('Registry secret', secret, 'A secret of format registry that may push the image.')),
  err, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create build')));
}

export async function buildRunPage(ctx, pid, name) {
  const base = api.p('projects', pid, 'build_runs', name);
  const project = await api.get(api.p('projects', pid));
  const facts = h('div', {});
  await ctx.every(2000, async () => {
    try {
      const r = await api.get(base);
      const sd = r.status_details || {};
      const built = sd.output_digest && r.output_image ? `${r.output_image.replace(/[:@][^/:@]*$/, '')}@${sd.output_digest}` : '';
      replace(facts, h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', {}, badge(r.status), sd.reason && sd.reason !== r.status ? ` ${sd.reason}` : '', sd.message ? ` — ${sd.message}` : ''),
        h('dt', {}, 'Build'), h('dd', {}, r.build_name || ''),
        h('dt', {}, 'Source'), h('dd', {}, r.source_url || r.source_image || '', sd.git_commit_sha ? ` at ${sd.git_commit_sha.slice(0, 12)}` : ''),
        h('dt', {}, 'Image'), h('dd', {}, built || r.output_image || '',
          built && api.can('writer') ? [' ', h('a', { href: `#/projects/${encodeURIComponent(pid)}/apps?image=${encodeURIComponent(built)}` }, 'Deploy it as an app')] : ''),
        h('dt', {}, 'Started'), h('dd', {}, when(sd.start_time)),
        h('dt', {}, 'Completed'), h('dd', {}, when(sd.completion_time))));
    } catch (e) { replace(facts, errorBox(e)); }
  });
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / ',
      h('a', { href: `#/projects/${encodeURIComponent(pid)}/builds` }, project.name), ' / ', name),
    h('h1', {}, `Build run ${name}`), facts,
    h('h2', {}, 'Log'), logView(ctx, `${base}/logs`, `Log of build run ${name}`));
}
