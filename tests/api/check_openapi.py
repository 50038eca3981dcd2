#!/usr/bin/env python3
"""Validates gatewayd's OpenAPI document and calls every operation in it.

Environment: API_URL (http://127.0.0.1:PORT), API_TOKEN (a bearer token).

Each operation is called with the bearer token, path parameters set to a name that does not
exist yet ("apitest") and a request body built from its schema, and must answer one of the
statuses the document lists for it, with a JSON body unless it documents text. Then each is
called without credentials and must answer 401 (login alone is open).
"""
import json
import re
import os
import sys
import urllib.error
import urllib.request

from openapi_spec_validator import validate

API = os.environ["API_URL"].rstrip("/")
TOKEN = os.environ["API_TOKEN"]
NAME = "apitest"


def call(method, path, body=None, token=TOKEN, query=None):
    url = API + path
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def resolve(doc, schema):
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = doc["components"]["schemas"][name]
    return schema


def example(doc, schema):
    schema = resolve(doc, schema)
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if t == "object" or "properties" in schema:
        return {
            k: example(doc, v)
            for k, v in schema.get("properties", {}).items()
            if k in schema.get("required", [])
        }
    if t == "array":
        return []
    if t == "string":
        return NAME
    if t == "boolean":
        return False
    if t in ("integer", "number"):
        return 0
    return None


def main():
    status, ctype, raw = call("GET", "/api/v1/openapi.json", token=None)
    assert status == 200, f"openapi.json: HTTP {status}"
    doc = json.loads(raw)
    validate(doc)
    ops = [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "delete")
    ]
    assert len(ops) >= 25, f"only {len(ops)} operations documented"
    bad = []
    for path, method, op in ops:
        concrete = re.sub(r"\{[a-z_]+\}", NAME, path)
        query = {
            p["name"]: "/" + NAME
            for p in op.get("parameters", [])
            if p.get("in") == "query"
        }
        body = None
        if "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            body = example(doc, schema)
        documented = {int(s) for s in op["responses"]}
        if path == "/api/v1/logout":
            continue  # a token caller has no session; checked below on its own
        status, ctype, raw = call(method.upper(), concrete, body, query=query)
        if status not in documented:
            bad.append(f"{method.upper()} {concrete}: HTTP {status} not in {sorted(documented)}: {raw[:200]!r}")
            continue
        if raw and not ctype.startswith("text/plain"):
            try:
                json.loads(raw)
            except ValueError:
                bad.append(f"{method.upper()} {concrete}: not JSON: {raw[:200]!r}")
        # Without credentials: refused, except login.
        anon = call(method.upper(), concrete, body, token=None, query=query)[0]
        if path == "/api/v1/login":
            continue
        if anon != 401:
            bad.append(f"{method.upper()} {concrete} without credentials: HTTP {anon}, not 401")
    status, _, _ = call("POST", "/api/v1/logout")
    if status != 200:
        bad.append(f"POST /api/v1/logout: HTTP {status}")
    if bad:
        print("\n".join(bad))
        sys.exit(1)
    print(f"openapi ok: {len(ops)} operations answered as documented")


if __name__ == "__main__":
    main()
