"""coligo's runtime proxy for Python.

It starts with no code (a pre-warmed runtime instance), takes a function's
code once, from coligo, on POST /.coligo/init (with the instance's init
token), compiles it in memory (never on disk), and then serves every
request, one at a time, by calling the code's main(args) per Code Engine's
internal request and response interfaces (CE-FUNCTIONS.md sections 7, 8).
"""

import base64
import binascii
import hashlib
import hmac
import http.server
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import re
import secrets
import signal
import sys
import threading
import traceback
import types
import urllib.parse

PORT = int(os.environ.get("PORT", "8080"))
# The instance's spec holds only the init token's SHA-256: what is at rest
# (the engine's metadata) cannot give code to the instance.
INIT_TOKEN_SHA256 = os.environ.pop("COLIGO_INIT_TOKEN_SHA256", "")
MAX_BODY = 5 << 20  # request and response bodies, 5 MB each
MAX_INIT = 64 << 20  # the init request: a code bundle (32 MiB) in base64, and the env
TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-z]+$")
IDENTIFIER = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "trailer", "te"}

entry = None  # the function's main, once initialized


class RequestError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def kind(content_type):
    """How a body of a content type reaches args."""
    t = (content_type or "").split(";")[0].strip().lower()
    if t in ("", "application/json"):
        return "json"
    if t.startswith("text/"):
        return "text"
    if t == "application/x-www-form-urlencoded":
        return "form"
    if t.startswith("multipart/"):
        return "multipart"
    return "binary"


def canonical(name):
    """A header name as Go's textproto writes it: x-request-id is X-Request-Id."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def reserved(key):
    return key.startswith("__ce_")


def build_args(method, target, headers, body):
    path, _, query = target.partition("?")
    a = {}
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if reserved(k):
            raise RequestError(400, f"the query may not set {k}: __ce_ keys are the platform's")
        a[k] = v
    k = kind(headers.get("Content-Type"))
    if k == "multipart":
        raise RequestError(400, "multipart request bodies are not supported")
    if body:
        if k == "json":
            try:
                v = json.loads(body)
            except ValueError:
                raise RequestError(400, "the request body is not valid JSON")
            if isinstance(v, dict):
                for key in v:
                    if reserved(key):
                        raise RequestError(400, f"the body may not set {key}: __ce_ keys are the platform's")
                a.update(v)
            a["__ce_body"] = base64.b64encode(body).decode()
        elif k == "form":
            for key, _ in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                if reserved(key):
                    raise RequestError(400, f"the form may not set {key}: __ce_ keys are the platform's")
            a["__ce_body"] = body.decode("utf-8", "replace")
        elif k == "text":
            a["__ce_body"] = body.decode("utf-8", "replace")
        else:
            a["__ce_body"] = base64.b64encode(body).decode()
    h = {}
    for name, value in headers.items():
        name = canonical(name)
        h[name] = h[name] + ", " + value if name in h else value
    a["__ce_method"] = method
    a["__ce_headers"] = h
    a["__ce_path"] = path or "/"
    if query:
        a["__ce_query"] = query
    return a


def build_response(result):
    """main's result as a status code, headers and body."""
    if result is None:
        result = {}
    if not isinstance(result, dict):
        result = {"body": result}
    headers = {}
    status = 200
    if "statusCode" in result:
        status = result["statusCode"]
        if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
            raise RequestError(422, "the function returned a statusCode that is not an integer from 200 to 599")
        headers["x-faas-actionstatus"] = [str(status)]
    content_type = None
    given = result.get("headers") or {}
    if not isinstance(given, dict):
        raise RequestError(400, "the function returned headers that are not an object")
    for name, value in given.items():
        n = str(name).lower()
        if not TOKEN.match(n):
            raise RequestError(400, "the function returned a header name that is not a token")
        if isinstance(value, list):
            if not all(isinstance(x, str) for x in value):
                raise RequestError(400, f"the function returned header {n} with values that are not strings")
            values = value
        elif isinstance(value, bool):
            values = ["true" if value else "false"]
        elif isinstance(value, (str, int, float)):
            values = [str(value)]
        else:
            raise RequestError(400, f"the function returned header {n} with a value that is not a string, number, boolean or array of strings")
        if any(re.search(r"[\r\n\0]", x) for x in values):
            raise RequestError(400, f"the function returned header {n} with a line break")
        if n in HOP_HEADERS or n.startswith("x-faas-"):
            continue
        if n == "content-type" and values:
            content_type = values[0]
        headers[n] = values
    body = result.get("body")
    if body is None or body == "":
        out = b""
    elif content_type is None:
        if isinstance(body, (dict, list)):
            headers["content-type"] = ["application/json"]
            out = json.dumps(body, separators=(",", ":")).encode()
        else:
            headers["content-type"] = ["text/plain; charset=utf-8"]
            out = (json.dumps(body) if isinstance(body, bool) else str(body)).encode()
    else:
        k = kind(content_type)
        if k == "json":
            out = (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode()
        elif k in ("text", "form"):
            if not isinstance(body, str):
                raise RequestError(400, f"the function returned a body for {content_type} that is not a string")
            out = body.encode()
        else:
            if not isinstance(body, str) or not BASE64.match(body) or len(body) % 4:
                raise RequestError(400, f"the function returned a body for {content_type} that is not base64")
            try:
                out = base64.b64decode(body, validate=True)
            except binascii.Error:
                raise RequestError(400, f"the function returned a body for {content_type} that is not base64")
    if len(out) > MAX_BODY:
        raise RequestError(400, "the function returned a body over 5 MB")
    return status, headers, out


class Bundle(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a code bundle's modules from its files, in memory: module
    a.b is a/b.py or the package a/b/__init__.py (or a directory of
    modules), as the bundle's root were first on sys.path."""

    def __init__(self, files):
        self.files = files
        self.dirs = {os.path.dirname(p) for p in files}
        for d in list(self.dirs):
            while d:
                d = os.path.dirname(d)
                self.dirs.add(d)

    def find_spec(self, fullname, path=None, target=None):
        rel = fullname.replace(".", "/")
        if rel + "/__init__.py" in self.files:
            return importlib.util.spec_from_loader(fullname, self, origin="/" + rel + "/__init__.py", is_package=True)
        if rel + ".py" in self.files:
            return importlib.util.spec_from_loader(fullname, self, origin="/" + rel + ".py")
        if rel in self.dirs:
            return importlib.util.spec_from_loader(fullname, self, origin=None, is_package=True)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        spec = module.__spec__
        if spec.submodule_search_locations is not None:
            module.__path__ = ["/" + spec.name.replace(".", "/")]
        if spec.origin is None:
            return  # a directory of modules
        module.__file__ = spec.origin
        exec(compile(self.files[spec.origin[1:]].decode("utf-8"), spec.origin, "exec"), module.__dict__)


def load(spec):
    """Loads the function's code in memory (inline source, or a code
    bundle's files with __main__.py its entry) and returns its entry."""
    name = spec.get("main") or "main"
    if not IDENTIFIER.match(name):
        raise RequestError(422, "the main name is not an identifier")
    files = spec.get("files")
    if isinstance(files, dict):
        files = {str(p): base64.b64decode(b) for p, b in files.items()}
        if "__main__.py" not in files:
            raise RequestError(422, "the code bundle has no __main__.py")
        finder = Bundle(files)
        at = next((i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder), len(sys.meta_path))
        sys.meta_path.insert(at, finder)
        source = files["__main__.py"].decode("utf-8")
    else:
        source = base64.b64decode(spec.get("code") or "").decode("utf-8")
    module = types.ModuleType("__coligo_function__")
    module.__file__ = "/__main__.py"
    exec(compile(source, "/__main__.py", "exec"), module.__dict__)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise RequestError(422, f"the code defines no function {name}")
    for k, v in (spec.get("env") or {}).items():
        os.environ[str(k)] = str(v)
    return fn


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes: without TCP_NODELAY the
    # second waits for the first's ACK, which the client delays (40 ms).
    disable_nagle_algorithm = True
    server_version = "coligo-python"
    sys_version = ""

    def log_message(self, *args):
        pass  # requests are the router's to log; stderr is the function's

    def send(self, status, headers, body):
        self.send_response(status)
        for name, values in headers.items():
            for v in values:
                self.send_header(name, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def refuse(self, status, message):
        body = (json.dumps({"error": message}) + "\n").encode()
        self.send(status, {"content-type": ["application/json"], "x-faas-result": ["error"]}, body)

    def read_body(self, limit):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                if len(out) + size > limit:
                    self.close_connection = True
                    raise RequestError(413, f"the request body is over {limit >> 20} MB")
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        if n > limit:
            # Read to its end and dropped, so that its sender reads the
            # 413; one larger still ends the connection unread.
            self.close_connection = True
            while 0 < n <= 4 * limit:
                got = len(self.rfile.read(min(n, 1 << 16)))
                if got == 0:
                    break
                n -= got
            raise RequestError(413, f"the request body is over {limit >> 20} MB")
        return self.rfile.read(n) if n > 0 else b""

    def serve(self):
        with invoking:
            self.serve_one()

    def serve_one(self):
        global entry
        try:
            body = self.read_body(MAX_INIT if entry is None else MAX_BODY)
            if entry is None:
                if self.command != "POST" or self.path != "/.coligo/init":
                    raise RequestError(503, "this runtime instance has no function yet")
                token = self.headers.get("X-Coligo-Init-Token", "")
                given = hashlib.sha256(token.encode()).hexdigest()
                if len(INIT_TOKEN_SHA256) != 64 or not hmac.compare_digest(given, INIT_TOKEN_SHA256.lower()):
                    raise RequestError(403, "wrong init token")
                try:
                    spec = json.loads(body)
                except ValueError:
                    raise RequestError(400, "the init body is not JSON")
                try:
                    entry = load(spec)
                except RequestError:
                    raise
                except Exception:
                    traceback.print_exc()
                    raise RequestError(422, "the function code does not load; see the function logs")
                self.send(200, {"content-type": ["application/json"], "x-coligo-initialized": ["true"]}, b'{"initialized":true}\n')
                return
            args = build_args(self.command, self.path, self.headers, body)
            try:
                result = entry(args)
            except Exception:
                traceback.print_exc()
                raise RequestError(500, "the function failed; see its logs")
            status, headers, out = build_response(result)
            headers["x-faas-activation-id"] = [secrets.token_hex(16)]
            headers["x-faas-result"] = ["success"]
            self.send(status, headers, out)
        except RequestError as e:
            self.refuse(e.code, str(e))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            self.refuse(500, "the function failed; see its logs")
        finally:
            sys.stderr.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = serve


class Server(http.server.ThreadingHTTPServer):
    # A connection of its own per client (coligo's, the router's kept-alive
    # ones), but one invocation at a time: Python functions take one
    # request per instance (CE-FUNCTIONS.md section 10).
    daemon_threads = True


invoking = threading.Lock()


def main():
    server = Server(("", PORT), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"runtime proxy listening on {PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
