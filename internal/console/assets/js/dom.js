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
  const tone = /^(ready|succeeded|completed|active|online|success|running)$/i.test(s) ? 'ok'
    : /fail|error|unavailable|deleted|soft_deleted/i.test(s) ? 'bad' : 'wait';
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
