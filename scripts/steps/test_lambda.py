#!/usr/bin/env python3
"""Drives the Lambda functions through cargo lambda's runtime emulator.

Starts `cargo lambda watch` on a free loopback port with scripts/dev/watch.env, runs the
register -> login -> validate flow over the function URLs
(http://127.0.0.1:<port>/lambda-url/<function>/...), a profile create/read through
users and a health check and a forwarded login through gateway, then feeds every
API Gateway v2 fixture in fixtures/events to `cargo lambda invoke --data-file` and
checks the status code. Then a second watch runs the gateway as deployed, without
AUTH_SERVICE_URL/USER_SERVICE_URL, and its fixtures must get the answers it gives in
AWS (AS_DEPLOYED: nothing forwarded). Every wait is bounded; watch and everything it
started are stopped on the way out. Run it through scripts/steps/test_lambda.sh
(python -m scripts.steps.test_lambda, from the repository's root).

A function whose binary target does not exist yet is skipped with a loud message,
unless it is listed in REQUIRED (or LAMBDA_REQUIRE_ALL=1 is set).
"""
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.lib import REPO, net

EVENTS = REPO / "fixtures" / "events"
FUNCTIONS = ["auth", "users", "gateway"]
# Functions that must exist. Add "users" and "gateway" once their binaries are merged.
REQUIRED = {"auth", "users", "gateway"}

# Status each fixture must produce, in the order they run ("TOKEN" in a fixture is
# replaced by a fresh token of a user registered by the flow first). A fixture in
# fixtures/events for a function under test but missing here fails the run.
EXPECTED = {
    "auth-health": 200,
    "auth-register": 200,
    "auth-login": 200,
    "auth-validate": 200,
    # The refresh and logout fixtures carry a refresh token nobody was issued and a
    # malformed bearer token: both are refused.
    "auth-refresh": 401,
    "auth-logout": 401,
    # The account fixtures carry the flow's token: its sessions are listed; a session
    # id that is not the caller's is 404; a wrong current password is 401 (and changes
    # or deletes nothing).
    "auth-sessions": 200,
    "auth-end-session": (404, "Session not found"),
    "auth-password": (401, "Current password is incorrect"),
    "auth-delete-account": (401, "Current password is incorrect"),
    # The users fixtures name the spec's sample user, not the token's: reads of it are
    # 404 (no such profile), writes are refused as someone else's profile.
    "users-health": 200,
    "users-list": 200,
    "users-create": 403,
    "users-get": 404,
    "users-update": 403,
    "users-delete": 403,
    "gateway-health": 200,
    "gateway-unknown-route": 404,
    # Under watch the gateway has service URLs and forwards: the unprefixed register
    # reaches auth, the read reaches users (no such profile). Dot segments never leave.
    "gateway-register": 200,
    "gateway-users-get": 404,
    "gateway-dot-segments": (404, "Route not found"),
}

# The gateway as deployed (no service URLs, API Gateway's $default route): the
# unprefixed auth and users paths are the unknown route, as is any dot segment.
AS_DEPLOYED = {
    "gateway-health": 200,
    "gateway-unknown-route": (404, "Route not found"),
    "gateway-register": (404, "Route not found"),
    "gateway-users-get": (404, "Route not found"),
    "gateway-dot-segments": (404, "Route not found"),
}

BUILD_TIMEOUT = int(os.environ.get("LAMBDA_BUILD_TIMEOUT", "900"))
LISTEN_TIMEOUT = 60
# The first request to each function starts it with `cargo run` (a no-op build
# after the prebuild step, but it may still link on a slow machine).
FIRST_REQUEST_TIMEOUT = int(os.environ.get("LAMBDA_FIRST_REQUEST_TIMEOUT", "300"))
REQUEST_TIMEOUT = 60
INVOKE_TIMEOUT = 120


class Failure(Exception):
    pass


def say(msg):
    print(f"test_lambda: {msg}", file=sys.stderr, flush=True)


def binary_targets():
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    meta = json.loads(out)
    return {t["name"] for p in meta["packages"] for t in p["targets"] if "bin" in t["kind"]}


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


class Watch:
    """`cargo lambda watch` in its own session, so it and its children can be stopped."""

    def __init__(self, port, env_file, log_path):
        self.port = port
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
             "--ignore-changes", "--timeout", str(REQUEST_TIMEOUT), "--env-file", str(env_file)],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def base(self, function):
        return f"http://127.0.0.1:{self.port}/lambda-url/{function}"

    def wait_listening(self):
        try:
            net.wait_listening(self.port, self.proc, "cargo lambda watch", LISTEN_TIMEOUT, interval=0.2)
        except net.NotUp as e:
            raise Failure(str(e)) from None

    def descendants(self):
        """(pid, cmdline) of every process started under watch, read before stopping
        it: the functions it runs with `cargo run` may sit in other process groups."""
        children = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d.name))
        found, todo = [], [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append((child, cmdline(child)))
                todo.append(child)
        return found

    def stop(self):
        started = self.descendants()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        for pid, cmd in started:
            if cmd is not None and cmdline(pid) == cmd:
                say(f"killing leftover pid {pid} ({cmd[:80]!r})")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.log.close()

    def tail(self, n=40):
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def request(method, url, body=None, token=None, timeout=REQUEST_TIMEOUT):
    """(status, parsed JSON body) of one HTTP call; no answer or a non-JSON body is a failure."""
    try:
        return net.call_json(method, url, body, token, timeout)
    except net.NoAnswer as e:
        raise Failure(str(e)) from e


PASSED = []


def expect(what, got_status, want, body):
    wants = want if isinstance(want, (set, tuple)) else {want}
    if got_status not in wants:
        raise Failure(f"{what}: expected {sorted(wants)}, got {got_status}: {body}")
    PASSED.append(what)
    say(f"ok  {what} -> {got_status}")


def flow(watch, active):
    """The user-facing journey over the function URLs; returns (token, user_id)."""
    auth = watch.base("auth")
    name = "watch" + secrets.token_hex(4)
    password = "securePassword123"
    creds = {"username": name, "email": f"{name}@example.com", "password": password}

    status, body = request("POST", f"{auth}/register", creds, timeout=FIRST_REQUEST_TIMEOUT)
    expect("auth POST /register", status, 200, body)
    user_id = body.get("user_id") if isinstance(body, dict) else None
    if not user_id or body.get("username") != name:
        raise Failure(f"register answered {body}, expected user_id and username {name!r}")

    status, body = request("POST", f"{auth}/register", creds)
    expect("auth POST /register again (duplicate)", status, 409, body)

    status, body = request("POST", f"{auth}/api/login", {"username": name, "password": password})
    expect("auth POST /api/login (the /api prefix works too)", status, 200, body)
    token = body.get("token") if isinstance(body, dict) else None
    if not token or body.get("token_type") != "Bearer":
        raise Failure(f"login answered {body}, expected a Bearer token")

    status, body = request("POST", f"{auth}/login", {"username": name, "password": "wrongPassword1"})
    expect("auth POST /login with a wrong password", status, 401, body)

    status, body = request("POST", f"{auth}/validate", {"token": token})
    expect("auth POST /validate", status, 200, body)
    if body != {"valid": True, "user_id": user_id, "username": name}:
        raise Failure(f"validate answered {body}")

    status, body = request("GET", f"{watch.base('local')}/", timeout=FIRST_REQUEST_TIMEOUT)
    expect("local under watch refuses to act as a function", status, 404, body)
    if "not a Lambda function" not in str(body):
        raise Failure(f"/lambda-url/local answered {body}, expected the refusal message")

    if "users" in active:
        users = watch.base("users")
        profile = {
            "user_id": user_id, "username": name, "email": f"{name}@example.com",
            "full_name": "Watch Test", "bio": "made by scripts/steps/test_lambda.py",
        }
        status, body = request("POST", f"{users}/users", profile, token=token, timeout=FIRST_REQUEST_TIMEOUT)
        expect("users POST /users (token from auth)", status, {200, 201}, body)
        status, body = request("GET", f"{users}/users/{user_id}", token=token)
        expect("users GET /users/{id}", status, 200, body)
        if not isinstance(body, dict) or body.get("username") != name or body.get("user_id") != user_id:
            raise Failure(f"users GET /users/{user_id} answered {body}")
        status, body = request("GET", f"{users}/users/{user_id}")
        expect("users GET /users/{id} without a token", status, 401, body)

    if "gateway" in active:
        gateway = watch.base("gateway")
        status, body = request("GET", f"{gateway}/", timeout=FIRST_REQUEST_TIMEOUT)
        expect("gateway GET /", status, 200, body)
        if not isinstance(body, dict) or body.get("status") != "ok":
            raise Failure(f"gateway GET / answered {body}")
        status, body = request("POST", f"{gateway}/api/login", {"username": name, "password": password})
        expect("gateway POST /api/login (forwarded to auth under watch)", status, 200, body)
        if "users" in active:
            status, body = request("GET", f"{gateway}/api/users/{user_id}", token=token)
            expect("gateway GET /api/users/{id} (forwarded to users under watch)", status, 200, body)
            if not isinstance(body, dict) or body.get("user_id") != user_id:
                raise Failure(f"gateway GET /api/users/{user_id} answered {body}")

    return token, user_id


def fixtures(active):
    found = sorted(p.stem for p in EVENTS.glob("*.json") if p.stem.split("-", 1)[0] in active)
    missing = [f for f in found if f not in EXPECTED]
    if missing:
        raise Failure(
            f"no expected status for fixture(s) {missing}: add them to EXPECTED in scripts/steps/test_lambda.py"
        )
    ordered = [f for f in EXPECTED if f in found]
    for f in EXPECTED:
        if f.split("-", 1)[0] in active and f not in found:
            raise Failure(f"EXPECTED names {f} but fixtures/events/{f}.json does not exist")
    return ordered


def invoke_all(watch, names, expected, token, tmp, label=""):
    count = 0
    for name in names:
        function = name.split("-", 1)[0]
        text = (EVENTS / f"{name}.json").read_text().replace("TOKEN", token)
        data_file = Path(tmp) / f"{name}.json"
        data_file.write_text(text)
        cmd = ["cargo", "lambda", "invoke", function, "--data-file", str(data_file),
               "--invoke-address", "127.0.0.1", "--invoke-port", str(watch.port), "--output-format", "json"]
        try:
            out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=INVOKE_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            raise Failure(f"cargo lambda invoke {function} {name}: no answer within {INVOKE_TIMEOUT} s") from e
        if out.returncode != 0:
            raise Failure(f"cargo lambda invoke {function} {name} exited {out.returncode}: {out.stderr.strip()[-800:]}")
        try:
            reply = json.loads(out.stdout)
        except json.JSONDecodeError as e:
            raise Failure(f"cargo lambda invoke {function} {name}: output is not JSON: {out.stdout[:300]!r}") from e
        status = reply.get("statusCode")
        body = reply.get("body")
        want = expected[name]
        want_status, want_message = want if isinstance(want, tuple) else (want, None)
        try:
            parsed = json.loads(body or "")
        except json.JSONDecodeError as e:
            raise Failure(f"{name}: the body is not JSON: {body!r}") from e
        if want_message is not None and (not isinstance(parsed, dict) or parsed.get("message") != want_message):
            raise Failure(f"{name}{label}: expected the message {want_message!r}, got {body}")
        expect(f"cargo lambda invoke {function} --data-file fixtures/events/{name}.json{label}", status, want_status, body)
        count += 1
    return count


def as_deployed(port, tmp, token):
    """The gateway under a second watch without service URLs, as in AWS."""
    env_text = (REPO / "scripts" / "dev" / "watch.env").read_text()
    env_text = re.sub(r"(?m)^(AUTH_SERVICE_URL|USER_SERVICE_URL)=.*\n", "", env_text)
    if "SERVICE_URL" in env_text:
        raise Failure("could not take the service URLs out of watch.env")
    env_file = Path(tmp) / "deployed.env"
    env_file.write_text(env_text)
    watch = Watch(port, env_file, REPO / ".tools" / f"watch-{port}.log")
    say(f"cargo lambda watch as deployed (no service URLs) on 127.0.0.1:{port} (log: {watch.log_path})")
    try:
        watch.wait_listening()
        return invoke_all(watch, list(AS_DEPLOYED), AS_DEPLOYED, token, tmp, " (as deployed)")
    except Failure:
        say("last lines of the watch log:\n" + watch.tail())
        raise
    finally:
        watch.stop()


def main():
    require_all = os.environ.get("LAMBDA_REQUIRE_ALL") == "1"
    bins = binary_targets()
    active = []
    for f in FUNCTIONS:
        if f in bins:
            active.append(f)
        elif f in REQUIRED or require_all:
            raise Failure(f"the {f} function has no binary target named {f!r}")
        else:
            say("#" * 72)
            say(f"SKIPPED: the {f} function has no binary target yet; not tested under cargo lambda")
            say("#" * 72)

    say(f"prebuilding {', '.join(active)} (debug, as watch runs them)")
    build = ["cargo", "build", "--quiet"] + [a for f in active for a in ("--bin", f)] + ["--bin", "local"]
    try:
        subprocess.run(build, cwd=REPO, check=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise Failure(f"cargo build did not finish within {BUILD_TIMEOUT} s") from e
    except subprocess.CalledProcessError as e:
        raise Failure(f"cargo build failed ({e.returncode})") from e

    port = net.free_port()
    with tempfile.TemporaryDirectory(prefix="test-lambda-") as tmp:
        env_text = (REPO / "scripts" / "dev" / "watch.env").read_text()
        env_text = re.sub(r"127\.0\.0\.1:9000\b", f"127.0.0.1:{port}", env_text)
        env_file = Path(tmp) / "watch.env"
        env_file.write_text(env_text)
        log_dir = REPO / ".tools"
        log_dir.mkdir(exist_ok=True)
        watch = Watch(port, env_file, log_dir / f"watch-{port}.log")
        say(f"cargo lambda watch on 127.0.0.1:{port} (log: {watch.log_path})")
        try:
            watch.wait_listening()
            token, _ = flow(watch, active)
            n = invoke_all(watch, fixtures(active), EXPECTED, token, tmp)
        except Failure:
            say("last lines of the watch log:\n" + watch.tail())
            raise
        finally:
            watch.stop()
        if "gateway" in active:
            n += as_deployed(net.free_port(), tmp, token)
    say(f"{len(active)} function(s) under watch ({', '.join(active)}), {n} fixture invocations")
    print(f"test_lambda: {len(PASSED)} passed, 0 failed", flush=True)


if __name__ == "__main__":
    # An outer `timeout` sends SIGTERM: unwind so that watch is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    except Failure as e:
        say(f"FAIL: {e}")
        sys.exit(1)
