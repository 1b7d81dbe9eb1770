// A log view: the last lines of a resource's logs, and a switch that
// follows new ones.
import { h, replace, errorBox } from './dom.js';
import * as api from './api.js';

// logView shows logs: the last lines, and a follow switch that streams
// new ones while the page is shown.
export function logView(ctx, path, label) {
  const pre = h('pre', { class: 'logs', tabindex: '0', 'aria-label': label, 'aria-live': 'off' });
  const err = h('div', {});
  let follow = null;
  const load = async () => {
    replace(err);
    if (follow) { follow.abort(); follow = null; }
    try {
      pre.textContent = await api.get(`${path}${path.includes('?') ? '&' : '?'}tail=200`) || '(no lines yet)';
    } catch (e) { replace(err, errorBox(e)); }
  };
  const box = h('input', { type: 'checkbox', onchange: async () => {
    if (!box.checked) { if (follow) follow.abort(); follow = null; return; }
    replace(err);
    follow = new AbortController();
    ctx.signal.addEventListener('abort', () => follow && follow.abort());
    pre.textContent = '';
    try {
      await api.stream(`${path}${path.includes('?') ? '&' : '?'}follow=true&tail=50`, (t) => {
        pre.textContent += t;
        if (pre.textContent.length > 200000) pre.textContent = pre.textContent.slice(-100000);
        pre.scrollTop = pre.scrollHeight;
      }, follow.signal);
    } catch (e) { if (e.name !== 'AbortError') replace(err, errorBox(e)); }
    box.checked = false;
  } });
  const id = `follow-${Math.random().toString(36).slice(2)}`;
  box.id = id;
  load();
  return h('div', { class: 'logbox' },
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: load }, 'Show last lines'),
      h('span', { class: 'check' }, box, h('label', { for: id }, 'Follow'))),
    err, pre);
}
