"""Validates openapi.json: the OpenAPI 3.0 meta-schema (the copy schemathesis ships),
every $ref resolving, unique operationIds, and path parameters declared exactly.

Usage: python -m scripts.checks.check_openapi openapi.json   (from the repository's root)
"""

import json
import re
import sys

import jsonschema
from schemathesis.specs.openapi.definitions import OPENAPI_30

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc, ref):
    if not ref.startswith("#/"):
        return False
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def problems(doc):
    for error in jsonschema.Draft4Validator(OPENAPI_30).iter_errors(doc):
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        yield f"meta-schema: {where}: {error.message[:200]}"
    for ref in sorted(set(refs(doc))):
        if not resolve(doc, ref):
            yield f"unresolved $ref {ref}"
    seen = {}
    for path, item in doc.get("paths", {}).items():
        templated = set(re.findall(r"{([^}]+)}", path))
        shared = [p for p in item.get("parameters", []) if p.get("in") == "path"]
        for method in METHODS & item.keys():
            op = item[method]
            op_id = op.get("operationId")
            if op_id in seen:
                yield f"operationId {op_id} used by {seen[op_id]} and {method} {path}"
            seen[op_id] = f"{method} {path}"
            own = [p for p in op.get("parameters", []) if p.get("in") == "path"]
            declared = {p["name"] for p in shared + own}
            if declared != templated:
                yield f"{method} {path}: path parameters {sorted(declared)} != {sorted(templated)}"
            if not any(code in op.get("responses", {}) for code in ("200", "202")):
                yield f"{method} {path}: no success response (200 or 202)"


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "openapi.json"
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    found = list(problems(doc))
    for problem in found:
        print(f"{path}: {problem}", file=sys.stderr)
    if found:
        sys.exit(1)
    print(f"{path}: valid OpenAPI {doc['openapi']}, {len(seen_ops(doc))} operations")


def seen_ops(doc):
    return [(m, p) for p, item in doc["paths"].items() for m in METHODS & item.keys()]


if __name__ == "__main__":
    main()
