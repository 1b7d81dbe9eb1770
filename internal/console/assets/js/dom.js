// DOM helpers. Every value from the API reaches the page as text (a text
// node or an attribute), never as HTML: this file is the only one that
// creates elements, and it has no way to parse markup.

// h makes an element. attrs: "on…" keys add listeners, "value" and
// "checked" set the property, "href" only takes http(s) or a fragment;
// children that are not nodes become text.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = String(v);
    else if (k === 'checked') el.checked = !!v;
    else if (k === 'href') el.setAttribute('href', safeHref(String(v)));
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// safeHref keeps fragments and http(s) URLs; anything else (javascript:,
// data:) becomes a dead link.
export function safeHref(u) {
  if (u.startsWith('#')) return u;
  try {
    const p = new URL(u, location.href);
    if (p.protocol === 'http:' || p.protocol === 'https:') return p.href;
  } catch (e) { /* not a URL */ }
  return '#';
}

// replace puts children in place of el's.
export function replace(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

let ids = 0;
export const uid = (p) => `${p}-${++ids}`;

// field is a labelled control; the control gets an id the label names.
export function field(label, control, hint) {
  const id = control.id || (control.id = uid('f'));
  const parts = [h('label', { for: id }, label), control];
  if (hint) {
    const hid = uid('h');
    control.setAttribute('aria-describedby', hid);
    parts.push(h('small', { id: hid, class: 'hint' }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

// table makes a table of rows; cols are [heading, row => cell].
export function table(caption, cols, rows, empty) {
  if (!rows.length) return h('p', { class: 'empty' }, empty || 'None yet.');
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, cols.map(([head]) => h('th', { scope: 'col' }, head)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, cols.map(([head, cell], i) => i === 0
        ? h('th', { scope: 'row', 'data-label': head }, cell(r)) : h('td', { 'data-label': head }, cell(r))))))));
}

// badge shows a status in words and colour.
export function badge(status) {
  const s = String(status || 'unknown');
  const tone = /^(ready|succeeded|completed|active|online|success|running|2\d\d)$/i.test(s) ? 'ok'
    : /fail|error|unavailable|deleted|soft_deleted|^[45]\d\d$/i.test(s) ? 'bad' : 'wait';
  return h('span', { class: `badge ${tone}` }, s);
}

// when shows a time as the user's locale writes it, the ISO time as a title.
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, isNaN(d) ? iso : d.toLocaleString());
}

// announce tells screen readers of what just happened.
export function announce(msg) {
  const s = document.getElementById('status');
  s.textContent = '';
  setTimeout(() => { s.textContent = msg; }, 50);
}

// errorBox shows an API error as the API words it (it names the field).
export function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' }, h('strong', {}, 'Error: '), err.message || String(err),
    err.trace ? h('small', { class: 'trace' }, ` (trace ${err.trace})`) : null);
}

// confirmTyped asks the user to type a word (a project's name) before an
// action that cannot be undone; it resolves true when they did.
export function confirmTyped(title, text, word, action) {
  return new Promise((resolve) => {
    const input = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
    const ok = h('button', { type: 'submit', class: 'danger', disabled: true }, action);
    input.addEventListener('input', () => { ok.disabled = input.value !== word; });
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title' },
      h('form', { method: 'dialog' },
        h('h2', { id: 'dlg-title' }, title),
        h('p', {}, text),
        field(`Type ${word} to confirm`, input),
        h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => dlg.close('cancel') }, 'Cancel'), ok)));
    dlg.addEventListener('close', () => { dlg.remove(); resolve(dlg.returnValue !== 'cancel' && input.value === word); });
    ok.addEventListener('click', (e) => { e.preventDefault(); dlg.close('ok'); });
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

// confirmPlain asks yes or no.
export function confirmPlain(title, text, action) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title' },
      h('form', { method: 'dialog' },
        h('h2', { id: 'dlg-title' }, title), h('p', {}, text),
        h('div', { class: 'actions' },
          h('button', { value: 'cancel' }, 'Cancel'),
          h('button', { value: 'ok', class: 'danger' }, action))));
    dlg.addEventListener('close', () => { dlg.remove(); resolve(dlg.returnValue === 'ok'); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

const SVG = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  add(el, children);
  return el;
}

// chart draws a line of values over the last hour (points of { t: ms,
// v: number }) as SVG, with its scale in text; screen readers get a
// summary of it.
export function chart(title, unit, points, nowMs) {
  const W = 480, H = 140, L = 40, B = 20, T = 8;
  const span = 3600 * 1000;
  const max = Math.max(1, ...points.map((p) => p.v));
  const top = max <= 5 ? Math.ceil(max) : Math.ceil(max / 5) * 5;
  const x = (t) => L + ((t - (nowMs - span)) / span) * (W - L - 4);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const pts = points.filter((p) => p.t >= nowMs - span);
  const last = pts.length ? pts[pts.length - 1].v : 0;
  const peak = pts.reduce((m, p) => Math.max(m, p.v), 0);
  const fmt = (v) => (Math.round(v * 100) / 100).toString();
  const summary = pts.length ? `${title}: now ${fmt(last)} ${unit}, peak ${fmt(peak)} over the last hour.` : `${title}: no samples yet.`;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary, class: 'chart' },
    s('line', { x1: L, y1: y(0), x2: W - 4, y2: y(0), class: 'axis' }),
    s('line', { x1: L, y1: y(top), x2: W - 4, y2: y(top), class: 'grid' }),
    s('text', { x: L - 6, y: y(top) + 4, 'text-anchor': 'end' }, fmt(top)),
    s('text', { x: L - 6, y: y(0) + 4, 'text-anchor': 'end' }, '0'),
    s('text', { x: L, y: H - 4 }, '60 min ago'),
    s('text', { x: W - 4, y: H - 4, 'text-anchor': 'end' }, 'now'),
    pts.length > 1 ? s('polyline', { points: pts.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' '), class: 'line' }) : null);
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, h('strong', {}, title), ` — now ${fmt(last)} ${unit}`), svg);
}
