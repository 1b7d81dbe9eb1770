// The function the runtime contract test calls on Node.js; contract.py is
// the same in Python.
function main(args) {
  switch (args.__ce_path) {
    case '/echo': return { body: args };
    case '/status': return { statusCode: /^[0-9]+$/.test(args.code) ? Number(args.code) : args.code, body: 'status' };
    case '/throw': throw new Error('contract-stack-marker');
    case '/png': return { headers: { 'Content-Type': 'image/png' }, body: 'iVBORw0KGgo=' };
    case '/not-base64': return { headers: { 'Content-Type': 'image/png' }, body: 'not base64!' };
    case '/text': return 'plain string';
    case '/headers': return { headers: { 'X-Multi': ['a', 'b'], 'X-Num': 5, 'Content-Length': '999' }, body: 'h' };
    case '/bad-header': return { headers: { 'bad name': 'x' } };
    case '/nothing': return undefined;
    case '/json-text': return { headers: { 'content-type': 'application/json' }, body: '{"a":1}' };
    case '/env': return { body: { secret: process.env.CONTRACT_SECRET, fn: process.env.CE_FUNCTION } };
    case '/async': return new Promise((resolve) => setTimeout(() => resolve({ body: 'later' }), 10));
  }
  return { statusCode: 404, body: 'no such path' };
}
module.exports.main = main;
