#!/usr/bin/env python3
"""Mutation check of the emulated API: template.yaml broken on purpose, one way at a
time, must make the end-to-end suite (scripts/steps/e2e.py) fail against `local emulate`,
and the template as it is must pass. This shows the emulation reads routes, CORS,
environment and IAM policies from the template rather than echoing the code.

Usage: python -m scripts.steps.mutants --local target/debug/local --build-dir .aws-sam/build
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.lib import REPO, exit_status, net

# The Login events of AuthFunction, moved to UsersFunction: a route sent to the
# wrong function.
LOGIN_EVENTS = """        Login:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Method: POST
            Path: /api/login
"""
LOGIN_OTHER = """        LoginOtherMethods:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Method: ANY
            Path: /api/login
"""


def move_login_to_users(text):
    text = replace_once(text, LOGIN_EVENTS, "")
    text = replace_once(text, LOGIN_OTHER, "")
    return replace_once(text, "        ListUsers:\n", LOGIN_EVENTS + LOGIN_OTHER + "        ListUsers:\n")


def replace_once(text, old, new):
    if text.count(old) != 1:
        raise SystemExit(f"mutants: the template no longer has exactly one {old.strip()!r}; update this script")
    return text.replace(old, new)


# (name, how to break the template, what the suite's failure must mention)
MUTANTS = [
    ("a route sent to the wrong function", move_login_to_users, "/api/login"),
    ("an exposed header missing from CorsConfiguration",
     lambda t: replace_once(t, "ExposeHeaders: [x-request-id, x-next-cursor, retry-after]",
                            "ExposeHeaders: [x-request-id, retry-after]"),
     "x-next-cursor"),
    ("a wrong environment variable name (users' PROFILES_TABLE)",
     lambda t: replace_once(t, "          STORE: dynamodb\n          PROFILES_TABLE: !Ref ProfilesTable\n",
                            "          STORE: dynamodb\n          PROFILE_TABLE: !Ref ProfilesTable\n"),
     "/api/users"),
    ("a grant missing from auth's policy (PutItem on the accounts table)",
     lambda t: replace_once(t, """            - Sid: AccountsTable
              Effect: Allow
              Action:
                - dynamodb:GetItem
                - dynamodb:PutItem
""", """            - Sid: AccountsTable
              Effect: Allow
              Action:
                - dynamodb:GetItem
"""),
     "/api/register"),
]


def run_suite(args, template, workdir):
    """Starts `local emulate` on `template`, runs e2e.py against it: (exit code, output)."""
    port = net.free_port()
    log = open(workdir / f"emulate-{port}.log", "w")
    emulate = subprocess.Popen(
        [args.local, "emulate", "--port", str(port), "--template", str(template),
         "--build-dir", args.build_dir, "--parameter-overrides", "BcryptCost=10",
         "RegisterMaxPerIp=1000000"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"})
    try:
        url = f"http://localhost:{port}"
        try:
            net.wait_until(lambda: net.answering(url + "/"), emulate, "local emulate", 90, interval=0.2)
        except net.NotUp as e:
            return 99, f"{e}: {read(workdir, port)}"
        suite = subprocess.run(
            [sys.executable, "-m", "scripts.steps.e2e", "--base-url", url, "--expect", "emulated"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
        return suite.returncode, suite.stdout + suite.stderr
    finally:
        emulate.terminate()
        try:
            emulate.wait(10)
        except subprocess.TimeoutExpired:
            emulate.kill()
        log.close()


def read(workdir, port):
    return (workdir / f"emulate-{port}.log").read_text()[-3000:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--local", default=str(REPO / "target/debug/local"))
    parser.add_argument("--build-dir", default=str(REPO / ".aws-sam/build"))
    args = parser.parse_args()
    original = (REPO / "template.yaml").read_text()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cases = [("the template as it is", lambda t: t, None)] + MUTANTS
        for name, mutate, mention in cases:
            template = workdir / "template.yaml"
            template.write_text(mutate(original))
            started = time.monotonic()
            code, output = run_suite(args, template, workdir)
            took = time.monotonic() - started
            last = [line for line in output.splitlines() if line.startswith("FAIL")]
            if mention is None:
                passed = code == 0
                verdict = "the suite passes" if passed else f"the suite failed:\n{output}"
            else:
                passed = code == 1 and any(mention in line for line in output.splitlines())
                verdict = (f"the suite fails: {last[0][:160] if last else '?'}" if passed
                           else f"the suite did not fail as it should (exit {code}):\n{output[-3000:]}")
            print(f"{'ok  ' if passed else 'FAIL'} {name}: {verdict} ({took:.0f} s)", flush=True)
            failures += not passed
    return exit_status("mutants", failures, f"{failures} of {len(cases)} cases went wrong",
                       f"the suite passes on the template and fails on each of {len(MUTANTS)} breakages")


if __name__ == "__main__":
    sys.exit(main())
