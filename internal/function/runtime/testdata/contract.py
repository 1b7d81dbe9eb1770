# The function the runtime contract test calls on Python; contract.js is the
# same in Node.js.
import os


def main(args):
    path = args["__ce_path"]
    if path == "/echo":
        return {"body": args}
    if path == "/status":
        code = args["code"]
        return {"statusCode": int(code) if code.isdigit() else code, "body": "status"}
    if path == "/throw":
        raise RuntimeError("contract-stack-marker")
    if path == "/png":
        return {"headers": {"Content-Type": "image/png"}, "body": "iVBORw0KGgo="}
    if path == "/not-base64":
        return {"headers": {"Content-Type": "image/png"}, "body": "not base64!"}
    if path == "/text":
        return "plain string"
    if path == "/headers":
        return {"headers": {"X-Multi": ["a", "b"], "X-Num": 5, "Content-Length": "999"}, "body": "h"}
    if path == "/bad-header":
        return {"headers": {"bad name": "x"}}
    if path == "/nothing":
        return None
    if path == "/json-text":
        return {"headers": {"content-type": "application/json"}, "body": '{"a":1}'}
    if path == "/env":
        return {"body": {"secret": os.environ.get("CONTRACT_SECRET"), "fn": os.environ.get("CE_FUNCTION")}}
    if path == "/async":
        return {"body": "later"}
    return {"statusCode": 404, "body": "no such path"}
