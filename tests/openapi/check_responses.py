#!/usr/bin/env python3
"""Validates the responses the HTTP tests received against docs/openapi.json.

The integration tests, run with CMDB_RESPONSE_LOG=<folder>, append every response they get
to <folder>/responses-<pid>.jsonl (tests/integration/http_client.cpp). For each one this
finds the documented operation (path template and method), the documented response for the
status (or the operation's `default`), and checks that the content type is documented and
that a JSON body is valid against its schema under JSON Schema 2020-12 (OpenAPI 3.1's
dialect), with python3-jsonschema. Fails on any mismatch, on a response to an undocumented
path or method, and when fewer responses than --min-responses were checked (the log went
missing).

Usage: check_responses.py OPENAPI_JSON LOG_FOLDER [--min-responses N]
"""

import argparse
import collections
import glob
import json
import os
import re
import sys
import urllib.parse

from jsonschema import Draft202012Validator


def escape_pointer(token):
    return token.replace("~", "~0").replace("/", "~1")


class Document:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        # Path templates as regular expressions, literal segments before templated ones so
        # that /cis/{id}/impact is not taken by a /cis/{x}/{y} style template.
        self.templates = []
        for template in self.doc["paths"]:
            parts = template.strip("/").split("/")
            pattern = "^/" + "/".join(
                "[^/]+" if re.fullmatch(r"\{[^}]+\}", p) else re.escape(p) for p in parts
            ) + "$"
            literal = sum(1 for p in parts if not p.startswith("{"))
            self.templates.append((-literal, template, re.compile(pattern)))
        self.templates.sort()
        self.validators = {}

    def operation(self, method, path):
        for _, template, pattern in self.templates:
            if pattern.match(path):
                operations = self.doc["paths"][template]
                return template, operations.get(method.lower())
        return None, None

    def validator(self, pointer):
        # The whole document is the root, so that "#/components/..." references resolve; the
        # schema to apply is a reference to the response's schema inside it. The document's
        # other keys are unknown keywords to JSON Schema and are ignored.
        if pointer not in self.validators:
            root = dict(self.doc)
            root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            root["$ref"] = pointer
            self.validators[pointer] = Draft202012Validator(root)
        return self.validators[pointer]


def check(document, record):
    """Returns a list of failure messages for one recorded response."""
    method = record["method"]
    target = record["target"]
    status = str(record["status"])
    path = urllib.parse.urlsplit(target).path
    if path == "/ui" or path.startswith("/ui/"):
        return []  # the web UI's pages and assets, not the JSON API (docs/ui.md)
    template, operation = document.operation(method, path)
    where = f"{method} {target} -> {status}"
    if template is None:
        # An unknown path is answered 404 with a problem document.
        if status == "404":
            return problems(document, where, record)
        return [f"{where}: the path is not documented"]
    if operation is None:
        # A method the path does not have: the server answers 405, which needs no operation.
        if status == "405":
            return []
        return [f"{where}: {method} is not documented for {template}"]
    responses = operation.get("responses", {})
    key = status if status in responses else (status[0] + "XX" if status[0] + "XX" in responses
                                              else "default")
    if key not in responses:
        return [f"{where}: status {status} is not documented for {method} {template}"]
    response = responses[key]
    pointer = "#/paths/" + escape_pointer(template) + "/" + method.lower() + "/responses/" + key
    if "$ref" in response:  # a shared response of components/responses
        pointer = response["$ref"]
        response = resolve(document.doc, pointer)
    content = response.get("content", {})
    media = record.get("content_type", "").split(";")[0].strip()
    if not content:
        if media and record["status"] != 204:
            return [f"{where}: sent {media}, the document describes no body"]
        return []
    if media not in content:
        return [f"{where}: sent {media or 'no content type'}, documented: {sorted(content)}"]
    if "invalid_json" in record:
        return [f"{where}: the body is not JSON: {record['invalid_json']!r}"]
    if "schema" not in content[media] or "body" not in record:
        return []
    schema_pointer = pointer + "/content/" + escape_pointer(media) + "/schema"
    errors = sorted(document.validator(schema_pointer).iter_errors(record["body"]),
                    key=lambda e: list(e.absolute_path))
    return [f"{where}: at /{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:300]}"
            for e in errors[:5]]


def problems(document, where, record):
    if record.get("content_type", "").split(";")[0].strip() != "application/problem+json":
        return [f"{where}: not a problem document"]
    errors = list(document.validator("#/components/schemas/Problem").iter_errors(
        record.get("body")))
    return [f"{where}: {e.message[:300]}" for e in errors[:5]]


def resolve(doc, pointer):
    node = doc
    for token in pointer[2:].split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("openapi")
    parser.add_argument("log_folder")
    parser.add_argument("--min-responses", type=int, default=500)
    args = parser.parse_args()
    document = Document(args.openapi)
    checked = 0
    failures = []
    seen = collections.Counter()
    for name in sorted(glob.glob(os.path.join(args.log_folder, "responses-*.jsonl"))):
        with open(name, encoding="utf-8", errors="replace") as f:
            for line in f:
                record = json.loads(line)
                checked += 1
                path = urllib.parse.urlsplit(record["target"]).path
                template, _ = document.operation(record["method"], path)
                seen[(record["method"], template, str(record["status"]))] += 1
                failures.extend(check(document, record))
    distinct = sorted(set(failures))
    for failure in distinct[:200]:
        print("FAIL", failure)
    operations = {(m.upper(), t) for t, ops in document.doc["paths"].items() for m in ops
                  if m in ("get", "put", "post", "patch", "delete")}
    exercised = {(m, t) for (m, t, _) in seen}
    missing = sorted(operations - exercised)
    print(f"checked {checked} responses of {len(exercised & operations)} of {len(operations)} "
          f"documented operations; {len(distinct)} distinct failures")
    for method, template in missing:
        print(f"not exercised by the tests: {method} {template}")
    if checked < args.min_responses:
        print(f"FAIL only {checked} responses were recorded (expected {args.min_responses} or "
              f"more): were the HTTP tests run with CMDB_RESPONSE_LOG={args.log_folder}?")
        return 1
    return 1 if distinct else 0


if __name__ == "__main__":
    sys.exit(main())
