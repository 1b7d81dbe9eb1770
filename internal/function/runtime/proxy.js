'use strict';
// coligo's runtime proxy for Node.js. It starts with no code (a pre-warmed
// runtime instance), takes a function's code once, from coligo, on
// POST /.coligo/init (with the instance's init token), compiles it in
// memory (never on disk), and then serves every request by calling the
// code's main(args) per Code Engine's internal request and response
// interfaces (CE-FUNCTIONS.md §7, §8).
const http = require('http');
const Module = require('module');
const path = require('path').posix;
const crypto = require('crypto');

const port = Number(process.env.PORT || 8080);
// The instance's spec holds only the init token's SHA-256: what is at rest
// (the engine's metadata) cannot give code to the instance.
const initTokenHash = Buffer.from(process.env.COLIGO_INIT_TOKEN_SHA256 || '', 'hex');
delete process.env.COLIGO_INIT_TOKEN_SHA256;
const maxBody = 5 << 20; // request and response bodies, 5 MB each
const maxInit = 64 << 20; // the init request: a code bundle (32 MiB) in base64, and the env
let entry = null; // the function's main, once initialized

const binaryType = /^(audio|example|font|image|model|video)\/|^application\/octet-stream$/;

// kind tells how a request body of a content type reaches args.
function kind(contentType) {
  const t = (contentType || '').split(';')[0].trim().toLowerCase();
  if (t === '' || t === 'application/json') return 'json';
  if (t.startsWith('text/')) return 'text';
  if (t === 'application/x-www-form-urlencoded') return 'form';
  if (t.startsWith('multipart/')) return 'multipart';
  return 'binary';
}

// canonical writes a header name as Go's textproto does: x-request-id is
// X-Request-Id.
function canonical(name) {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());
}

class RequestError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

function reserved(key) { return key.startsWith('__ce_'); }

// args builds main's argument from a request and its body.
function args(req, body) {
  const url = new URL(req.url, 'http://function');
  const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
  const a = {};
  for (const [k, v] of new URLSearchParams(query)) {
    if (reserved(k)) throw new RequestError(400, `the query may not set ${k}: __ce_ keys are the platform's`);
    a[k] = v;
  }
  const k = kind(req.headers['content-type']);
  if (k === 'multipart') throw new RequestError(400, 'multipart request bodies are not supported');
  if (body.length > 0) {
    switch (k) {
      case 'json': {
        let v;
        try { v = JSON.parse(body.toString('utf8')); } catch (e) { throw new RequestError(400, 'the request body is not valid JSON'); }
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
          for (const key of Object.keys(v)) {
            if (reserved(key)) throw new RequestError(400, `the body may not set ${key}: __ce_ keys are the platform's`);
            a[key] = v[key];
          }
        }
        a.__ce_body = body.toString('base64');
        break;
      }
      case 'form':
        for (const key of new URLSearchParams(body.toString('utf8')).keys()) {
          if (reserved(key)) throw new RequestError(400, `the form may not set ${key}: __ce_ keys are the platform's`);
        }
        a.__ce_body = body.toString('utf8');
        break;
      case 'text':
        a.__ce_body = body.toString('utf8');
        break;
      default:
        a.__ce_body = body.toString('base64');
    }
  }
  const headers = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = canonical(req.rawHeaders[i]);
    headers[name] = name in headers ? headers[name] + ', ' + req.rawHeaders[i + 1] : req.rawHeaders[i + 1];
  }
  a.__ce_method = req.method;
  a.__ce_headers = headers;
  a.__ce_path = url.pathname;
  if (query !== '') a.__ce_query = query;
  return a;
}

// hopHeaders are response headers a function may not set: the proxy frames
// the response itself.
const hopHeaders = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'trailer', 'te']);

// response maps main's result to a status code, headers and body.
function response(result) {
  if (result === undefined || result === null) result = {};
  if (typeof result !== 'object' || Array.isArray(result)) result = { body: result };
  const headers = {};
  let status = 200;
  if (result.statusCode !== undefined) {
    status = result.statusCode;
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw new RequestError(422, 'the function returned a statusCode that is not an integer from 200 to 599');
    }
    headers['x-faas-actionstatus'] = String(status);
  }
  let contentType;
  const set = result.headers || {};
  if (typeof set !== 'object' || Array.isArray(set)) throw new RequestError(400, 'the function returned headers that are not an object');
  for (const [name, value] of Object.entries(set)) {
    const n = name.toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(n)) throw new RequestError(400, 'the function returned a header name that is not a token');
    let v;
    if (Array.isArray(value)) {
      if (!value.every((x) => typeof x === 'string')) throw new RequestError(400, `the function returned header ${n} with values that are not strings`);
      v = value;
    } else if (['string', 'number', 'boolean'].includes(typeof value)) {
      v = String(value);
    } else {
      throw new RequestError(400, `the function returned header ${n} with a value that is not a string, number, boolean or array of strings`);
    }
    if ([].concat(v).some((x) => /[\r\n\0]/.test(x))) throw new RequestError(400, `the function returned header ${n} with a line break`);
    if (hopHeaders.has(n) || n.startsWith('x-faas-')) continue;
    if (n === 'content-type') contentType = [].concat(v)[0];
    headers[n] = v;
  }
  let body = result.body;
  let out;
  if (body === undefined || body === null || body === '') {
    out = Buffer.alloc(0);
  } else if (contentType === undefined) {
    if (typeof body === 'object') {
      headers['content-type'] = 'application/json';
      out = Buffer.from(JSON.stringify(body));
    } else {
      headers['content-type'] = 'text/plain; charset=utf-8';
      out = Buffer.from(String(body));
    }
  } else {
    const k = kind(contentType);
    if (k === 'json') {
      out = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    } else if (k === 'text' || k === 'form') {
      if (typeof body !== 'string') throw new RequestError(400, `the function returned a body for ${contentType} that is not a string`);
      out = Buffer.from(body);
    } else {
      if (typeof body !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) {
        throw new RequestError(400, `the function returned a body for ${contentType} that is not base64`);
      }
      out = Buffer.from(body, 'base64');
    }
  }
  if (out.length > maxBody) throw new RequestError(400, 'the function returned a body over 5 MB');
  return { status, headers, body: out };
}

function send(res, status, headers, body) {
  headers['content-length'] = String(body.length);
  res.writeHead(status, headers);
  res.end(body);
}

function refuse(res, status, message) {
  send(res, status, { 'content-type': 'application/json', 'x-faas-result': 'error' }, Buffer.from(JSON.stringify({ error: message }) + '\n'));
}

// readBody reads a request body of at most limit bytes. A larger one is
// read to its end and dropped, so that its sender reads the 413; one
// larger still ends the connection.
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > 4 * limit) req.destroy();
      else if (n <= limit) chunks.push(c);
    });
    req.on('end', () => n > limit ? reject(new RequestError(413, `the request body is over ${limit >> 20} MB`)) : resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// bundle loads a code bundle's CommonJS modules from its files, in memory:
// require() finds them among the files as Node finds them on disk
// (relative paths, node_modules, package.json's main, index.js), and
// Node's own modules as they are. It returns the entry module's exports:
// the file package.json names, else index.js, else main.js.
function bundle(encoded) {
  const files = new Map();
  for (const [p, b] of Object.entries(encoded)) files.set('/' + p, Buffer.from(String(b), 'base64'));
  const cache = new Map();
  const asFile = (p) => ['', '.js', '.json', '.cjs'].map((x) => p + x).find((x) => files.has(x)) || null;
  const asIndex = (p) => ['/index.js', '/index.json', '/index.cjs'].map((x) => path.join(p, x)).find((x) => files.has(x)) || null;
  function asDir(p) {
    const pj = files.get(path.join(p, 'package.json'));
    if (pj) {
      let main;
      try { main = JSON.parse(pj.toString('utf8')).main; } catch (e) { /* as Node: no main */ }
      if (typeof main === 'string' && main !== '') {
        const m = asFile(path.join(p, main)) || asIndex(path.join(p, main));
        if (m) return m;
      }
    }
    return asIndex(p);
  }
  function resolve(from, request) {
    if (/^\.\.?(\/|$)|^\//.test(request)) {
      const p = path.resolve(path.dirname(from), request);
      return asFile(p) || asDir(p);
    }
    for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
      if (path.basename(dir) !== 'node_modules') {
        const p = path.join(dir, 'node_modules', request);
        const f = asFile(p) || asDir(p);
        if (f) return f;
      }
      if (dir === '/') return null;
    }
  }
  function load(filename) {
    const cached = cache.get(filename);
    if (cached) return cached.exports;
    const m = new Module(filename, null);
    m.filename = filename;
    m.paths = [];
    m.require = (request) => requireFrom(filename, request);
    cache.set(filename, m);
    const source = files.get(filename).toString('utf8');
    if (filename.endsWith('.json')) m.exports = JSON.parse(source);
    else m._compile(source, filename);
    m.loaded = true;
    return m.exports;
  }
  function requireFrom(from, request) {
    if (typeof request !== 'string' || request === '') throw new TypeError('require takes a module name');
    if (Module.isBuiltin(request)) return require(request);
    const f = resolve(from, request);
    if (f === null) {
      const e = new Error(`Cannot find module '${request}' in the code bundle (required from ${from})`);
      e.code = 'MODULE_NOT_FOUND';
      throw e;
    }
    return load(f);
  }
  const entryFile = asDir('/') || asFile('/main.js');
  if (entryFile === null) throw new RequestError(422, 'the code bundle has no entry: no package.json main, index.js or main.js');
  return load(entryFile);
}

// init loads the function's code in memory (never on disk) and finds its
// entry: inline source, or a code bundle's files.
function init(spec) {
  const name = spec.main || 'main';
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new RequestError(422, 'the main name is not an identifier');
  let exports;
  if (spec.files && typeof spec.files === 'object') {
    exports = bundle(spec.files);
  } else {
    // Code that only declares main (as OpenWhisk actions do) is found too.
    const source = Buffer.from(spec.code || '', 'base64').toString('utf8') +
      `\n;module.exports.__coligo_entry = typeof ${name} === 'function' ? ${name} : undefined;\n`;
    const m = new Module('function.js', null);
    m.filename = '/function.js';
    m.paths = [];
    m._compile(source, '/function.js');
    exports = m.exports;
  }
  let fn = exports && (exports[name] || exports.__coligo_entry);
  if (typeof exports === 'function' && name === 'main') fn = exports;
  if (typeof fn !== 'function') throw new RequestError(422, `the code exports no function ${name}`);
  for (const [k, v] of Object.entries(spec.env || {})) process.env[k] = String(v);
  return fn;
}

const server = http.createServer(async (req, res) => {
  try {
    const body = await readBody(req, entry === null ? maxInit : maxBody);
    if (entry === null) {
      if (req.method !== 'POST' || req.url !== '/.coligo/init') throw new RequestError(503, 'this runtime instance has no function yet');
      const token = req.headers['x-coligo-init-token'] || '';
      const hash = crypto.createHash('sha256').update(String(token)).digest();
      if (initTokenHash.length !== 32 || !crypto.timingSafeEqual(hash, initTokenHash)) {
        throw new RequestError(403, 'wrong init token');
      }
      let spec;
      try { spec = JSON.parse(body.toString('utf8')); } catch (e) { throw new RequestError(400, 'the init body is not JSON'); }
      try {
        entry = init(spec);
      } catch (e) {
        if (e instanceof RequestError) throw e;
        console.error('the function code does not load:', e && e.stack || e);
        throw new RequestError(422, 'the function code does not load; see the function logs');
      }
      send(res, 200, { 'content-type': 'application/json', 'x-coligo-initialized': 'true' }, Buffer.from('{"initialized":true}\n'));
      return;
    }
    const a = args(req, body);
    let result;
    try {
      result = await entry(a);
    } catch (e) {
      console.error(e && e.stack || e);
      throw new RequestError(500, 'the function failed; see its logs');
    }
    const r = response(result);
    r.headers['x-faas-activation-id'] = crypto.randomBytes(16).toString('hex');
    r.headers['x-faas-result'] = 'success';
    send(res, r.status, r.headers, r.body);
  } catch (e) {
    if (!(e instanceof RequestError)) {
      console.error(e && e.stack || e);
      e = new RequestError(500, 'the function failed; see its logs');
    }
    if (!res.headersSent) refuse(res, e.code, e.message);
  }
});
server.keepAliveTimeout = 120000;
server.listen(port, () => console.log(`runtime proxy listening on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
