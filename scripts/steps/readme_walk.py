#!/usr/bin/env python3
"""Runs the README's curl walk-through against the emulated API and checks each answer
against the `# ...` line under its command (`…` matches anything). The commands run
as written, in one bash session, with only the port of `http://localhost:3002`
changed to the API's; the `cargo run` line that starts the API is left out.

Usage: python -m scripts.steps.readme_walk --base-url http://localhost:PORT   (from the repository's root)
"""
import argparse
import re
import subprocess
import sys

from scripts.lib import REPO, exit_status

README = REPO / "README.md"
SECTION = "## Three ways to run it locally"


def walk():
    """[(command, expected or None)] of the section's bash block."""
    text = README.read_text()
    section = text[text.index(SECTION):]
    block = section[section.index("```bash\n") + len("```bash\n"):]
    block = block[:block.index("```")]
    steps, command = [], []
    for line in block.splitlines():
        if line.startswith("# "):
            if steps and steps[-1][1] is None:
                steps[-1] = (steps[-1][0], line[2:])
            continue
        if not line.strip():
            continue
        command.append(line)
        if not line.endswith("\\"):
            steps.append(("\n".join(command), None))
            command = []
    return [(c, e) for c, e in steps if not c.startswith("cargo run")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args()
    steps = walk()
    if len(steps) < 5:
        print(f"readme_walk: found only {len(steps)} commands in {SECTION!r}", file=sys.stderr)
        return 1
    script = ["set -u"]
    for i, (command, _) in enumerate(steps):
        script += [f"echo '@@{i}'", command.replace("http://localhost:3002", args.base_url), "echo"]
    run = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, timeout=120)
    outputs = re.split(r"^@@\d+\n", run.stdout, flags=re.M)[1:]
    if run.returncode != 0 or len(outputs) != len(steps):
        print(f"readme_walk: the walk-through failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr}",
              file=sys.stderr)
        return 1
    failures = 0
    for (command, expected), output in zip(steps, outputs):
        first = command.splitlines()[0][:70]
        if expected is None:
            print(f"ran  {first}")
            continue
        pattern = "^" + ".*?".join(re.escape(part) for part in expected.split("…")) + "$"
        if re.match(pattern, output.strip(), flags=re.S):
            print(f"ok   {first}")
        else:
            failures += 1
            print(f"FAIL {first}\n  README: {expected}\n  got:    {output.strip()[:500]}")
    return exit_status("readme_walk", failures, f"{failures} answers differ from the README",
                       f"the README's walk-through answers as written ({len(steps)} commands)")


if __name__ == "__main__":
    sys.exit(main())
