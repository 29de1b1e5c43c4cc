#!/usr/bin/env python3
"""Checks that the crate diagram of docs/architecture.md is the workspace's real one.

The first fenced block under "## The crates" holds one line per workspace member,
`path ──► dep, dep[feature], …` (`(none)` for no crate of ours), optionally followed by
a comment in parentheses after two spaces. Each member's normal dependencies on other
members, with the features it turns on, must be exactly the ones its line names, as
`cargo metadata` reads them from the manifests; every member has one line and every
line names a member.

Usage: python -m scripts.checks.check_crate_graph   (from the repository's root)
It first checks a copy of the diagram with one dependency dropped and one added and
fails unless both are reported, so a checker that passes everything fails too.
"""
import json
import os
import re
import subprocess
import sys

from scripts.lib import REPO

DOC = REPO / "docs" / "architecture.md"
LINE = re.compile(r"^\s*(?P<path>\S+) ─*► (?P<deps>.*?)(?:\s{2,}\(.*\))?\s*$")
DEP = re.compile(r"^(?P<name>[\w-]+)(?:\[(?P<features>[\w,-]+)\])?$")


def diagram(text: str) -> list[str]:
    """The lines of the first fenced block after the '## The crates' heading."""
    section = text.split("\n## The crates\n", 1)
    if len(section) != 2:
        raise SystemExit(f"{DOC}: no '## The crates' section")
    block = re.search(r"^```[^\n]*\n(.*?)^```", section[1], re.S | re.M)
    if not block:
        raise SystemExit(f"{DOC}: no fenced block under '## The crates'")
    return block.group(1).splitlines()


def documented(lines: list[str]) -> tuple[dict[str, set[str]], list[str]]:
    """Each path's documented dependencies ('name' or 'name[f1,f2]'), and the problems."""
    graph, problems = {}, []
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        path, deps = m["path"], m["deps"].strip()
        if path in graph:
            problems.append(f"{path}: more than one line")
        names = set()
        if deps != "(none)":
            for dep in (d.strip() for d in deps.split(",")):
                d = DEP.match(dep)
                if not d:
                    problems.append(f"{path}: cannot read dependency {dep!r}")
                    continue
                features = sorted(filter(None, (d["features"] or "").split(",")))
                names.add(d["name"] + (f"[{','.join(features)}]" if features else ""))
        graph[path] = names
    return graph, problems


def actual() -> dict[str, set[str]]:
    """Each member's normal dependencies on members, as cargo metadata reads them."""
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
                         cwd=REPO, check=True, capture_output=True, text=True).stdout
    meta = json.loads(out)
    members = {p["name"] for p in meta["packages"]}
    graph = {}
    for p in meta["packages"]:
        path = os.path.relpath(os.path.dirname(p["manifest_path"]), meta["workspace_root"])
        graph[path] = {
            d["name"] + (f"[{','.join(sorted(d['features']))}]" if d["features"] else "")
            for d in p["dependencies"]
            if d["name"] in members and d["kind"] is None
        }
    return graph


def compare(doc: dict[str, set[str]], real: dict[str, set[str]]) -> list[str]:
    problems = []
    for path in sorted(real.keys() - doc.keys()):
        problems.append(f"{path}: a workspace member missing from the diagram")
    for path in sorted(doc.keys() - real.keys()):
        problems.append(f"{path}: in the diagram but not a workspace member")
    for path in sorted(real.keys() & doc.keys()):
        for dep in sorted(real[path] - doc[path]):
            problems.append(f"{path}: depends on {dep}, which the diagram does not show")
        for dep in sorted(doc[path] - real[path]):
            problems.append(f"{path}: the diagram shows {dep}, which is not a dependency")
    return problems


def self_test(lines: list[str], real: dict[str, set[str]]) -> None:
    """A diagram with one dependency dropped and one added must give both reports."""
    target = next(i for i, line in enumerate(lines) if LINE.match(line) and "," in line)
    path = LINE.match(lines[target])["path"]
    head, deps = lines[target].split("► ", 1)
    kept = deps.split(", ")[1:]
    planted = list(lines)
    planted[target] = head + "► " + ", ".join(kept + ["nonexistent-crate"])
    doc, _ = documented(planted)
    found = compare(doc, real)
    wanted = [f"{path}: depends on", f"{path}: the diagram shows nonexistent-crate"]
    if not all(any(f.startswith(w) for f in found) for w in wanted):
        raise SystemExit(f"check_crate_graph: self-test failed: planted faults not all found: {found}")


def main() -> None:
    lines = diagram(DOC.read_text())
    real = actual()
    self_test(lines, real)
    doc, problems = documented(lines)
    problems += compare(doc, real)
    if problems:
        print("\n".join(f"docs/architecture.md: {p}" for p in problems), file=sys.stderr)
        raise SystemExit(f"check_crate_graph: {len(problems)} difference(s) from cargo metadata")
    print(f"check_crate_graph: docs/architecture.md's diagram matches cargo metadata "
          f"({len(real)} crates, {sum(map(len, real.values()))} edges; planted faults caught)")


if __name__ == "__main__":
    main()
