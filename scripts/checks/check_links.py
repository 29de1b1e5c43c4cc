#!/usr/bin/env python3
"""Checks that the repository's documentation stands on its own: every link in every
Markdown file resolves inside the repository, and every file named in a comment of
template.yaml exists.

A link is broken when it is an absolute or `file:` path, leaves the repository
(`../` past its root), names a file that does not exist, or names an anchor that no
heading (GitHub's slugs) or `id`/`name` attribute of the target defines; an anchor on
a non-Markdown file must be a line anchor (`#L10`, `#L10-L20`). http(s) and mailto
links are allowed and not fetched. Code spans and blocks are not links.

Usage: python -m scripts.checks.check_links [repo root]   (from the repository's root, with
.tools/venv/bin/python)
It first runs itself on a small made-up repository with known faults and fails unless
it finds exactly those, so a checker that passes everything fails too.
"""
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt

from scripts.lib import REPO

ALLOWED_SCHEMES = {"http", "https", "mailto"}
LINE_ANCHOR = re.compile(r"L\d+(-L\d+)?")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
HTML_LINK = re.compile(r"""<(?:a|img)\s[^>]*\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
# Names in template.yaml comments that look like files of the repository.
FILE_MENTION = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w.-]+\.(?:md|py|sh|rs|json|ya?ml|toml|txt|lua))\b")
# Files that tools write and the repository does not hold.
GENERATED = {"samconfig.toml"}

MD = MarkdownIt("commonmark").enable("table")
# markdown-it drops `file:` and similar links as unsafe; here they must be seen.
MD.validateLink = lambda url: True


def markdown_files(root):
    """The Markdown files of the repository: tracked or new, not ignored."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard",
             "-z", "--", "*.md"],
            check=True, capture_output=True, text=True,
        ).stdout.split("\0")
        return sorted({root / name for name in listed if name and (root / name).is_file()})
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".tools", "target", "node_modules", ".aws-sam"}
        return sorted(
            p for p in root.rglob("*.md") if not skip.intersection(p.relative_to(root).parts)
        )


def inline_text(token):
    return "".join(
        child.content for child in token.children or [] if child.type in ("text", "code_inline")
    )


def slug(text):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to `-`."""
    kept = "".join(c for c in text.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        text = path.read_text(encoding="utf-8")
        tokens = MD.parse(text)
        found, seen = set(), {}
        for i, token in enumerate(tokens):
            if token.type == "heading_open":
                base = slug(inline_text(tokens[i + 1]))
                n = seen.get(base, 0)
                seen[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
        found.update(HTML_ANCHOR.findall(text))
        cache[path] = found
    return cache[path]


def links(path):
    """(line, target) of every link and image in a Markdown file, outside code."""
    found = []

    def walk(tokens, line):
        for token in tokens:
            if token.map:
                line = token.map[0] + 1
            if token.type in ("softbreak", "hardbreak"):
                line += 1
            elif token.type == "link_open":
                found.append((line, token.attrGet("href")))
            elif token.type == "image":
                found.append((line, token.attrGet("src")))
            elif token.type in ("html_inline", "html_block"):
                found.extend((line, target) for target in HTML_LINK.findall(token.content))
            if token.children:
                walk(token.children, line)

    walk(MD.parse(path.read_text(encoding="utf-8")), 1)
    return found


def link_problem(root, source, target):
    """Why `target`, linked from `source`, does not resolve in the repository; None if it does."""
    parts = urlsplit(target)
    if parts.scheme in ALLOWED_SCHEMES:
        return None
    if parts.scheme or parts.netloc:
        return "not a repository link"
    if parts.path.startswith("/"):
        return "an absolute path"
    if parts.path:
        resolved = (source.parent / unquote(parts.path)).resolve()
        try:
            resolved.relative_to(root.resolve())
        except ValueError:
            return "outside the repository"
        if not resolved.exists():
            return "no such file"
    else:
        resolved = source
    anchor = unquote(parts.fragment)
    if not anchor:
        return None
    if resolved.is_dir():
        return "an anchor on a directory"
    if resolved.suffix.lower() == ".md":
        return None if anchor in anchors(resolved) else "no such anchor"
    return None if LINE_ANCHOR.fullmatch(anchor) else "no such anchor (not a line anchor)"


def template_problems(root):
    template = root / "template.yaml"
    if not template.is_file():
        return []
    problems = []
    for number, line in enumerate(template.read_text(encoding="utf-8").splitlines(), 1):
        comment = line.lstrip()
        if not comment.startswith("#"):
            continue
        for name in FILE_MENTION.findall(comment):
            if name not in GENERATED and not (root / name).exists():
                problems.append(f"template.yaml:{number}: names {name}, which does not exist")
    return problems


def check(root):
    problems = []
    for path in markdown_files(root):
        for line, target in links(path):
            why = link_problem(root, path, target or "")
            if why:
                problems.append(f"{path.relative_to(root)}:{line}: {target}: {why}")
    return problems + template_problems(root)


def self_test():
    """The checker on a made-up repository: it must report exactly the planted faults."""
    files = {
        "README.md": "# Top\n\n## Deploy to AWS\n\n## Deploy to AWS\n\n"
        "[ok](docs/a.md) [ok](docs/a.md#the-api--in-brief) [ok](#deploy-to-aws-1)\n"
        "[ok](https://example.com/x) [ok](src/x.rs#L3-L5) [ok](docs/)\n"
        "[gone](docs/missing.md) [up](../outside.md) [abs](/etc/passwd)\n"
        "[anchor](docs/a.md#nowhere) [here](#nowhere) [line](src/x.rs#top)\n"
        "[file](file:///etc/passwd)\n\n`[code](nowhere.md)`\n\n```\n[block](nowhere.md)\n```\n",
        "docs/a.md": "# The API — in brief\n\n[back](../README.md#top) [img](../pic.png)\n"
        '<a href="../../escape.md">x</a>\n',
        "src/x.rs": "",
        "template.yaml": "# see docs/a.md and docs/deploy.md\n# samconfig.toml is written by sam\n"
        "Resources: {}\n",
    }
    expected = {
        "README.md:9: docs/missing.md: no such file",
        "README.md:9: ../outside.md: outside the repository",
        "README.md:9: /etc/passwd: an absolute path",
        "README.md:10: docs/a.md#nowhere: no such anchor",
        "README.md:10: #nowhere: no such anchor",
        "README.md:10: src/x.rs#top: no such anchor (not a line anchor)",
        "README.md:11: file:///etc/passwd: not a repository link",
        "docs/a.md:3: ../pic.png: no such file",
        "docs/a.md:4: ../../escape.md: outside the repository",
        "template.yaml:1: names docs/deploy.md, which does not exist",
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text, encoding="utf-8")
        found = set(check(root))
    if found != expected:
        missed = sorted(expected - found)
        extra = sorted(found - expected)
        sys.exit(f"check_links.py self-test failed: missed {missed}, wrongly reported {extra}")


def main():
    self_test()
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else REPO
    problems = check(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(f"check_links.py: {len(problems)} broken link(s) or file name(s)")
    count = len(markdown_files(root))
    print(f"check_links.py: every link of {count} Markdown files and template.yaml resolves")


if __name__ == "__main__":
    main()
