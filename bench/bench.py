"""The benchmarks, run side by side; see bench/bench.sh (the entry point) and report.py.

Builds in release, runs every benchmark, prints the tables and writes BENCHMARKS.md.
Expects PATH to hold wrk and cargo-lambda, and DYNAMODB_ENDPOINT to point at a
DynamoDB-compatible server (bench/bench.sh arranges all three). Runs as a module from
the repository's root: python -m bench.bench [--smoke | --only read|cold | --render RESULTS].
"""

import argparse
import base64
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

from bench import report
from bench.report import FUNCTIONS, MIB, PRICE_PER_MILLION_RRU, PRICE_PER_MILLION_WRU, f1
from scripts.lib import REPO, net
from scripts.lib.testca import tls_files

EVENTS = REPO / "fixtures" / "events"
SECRET = "bench-secret-that-is-at-least-32-bytes-long"
PASSWORD = "securePassword123"

def say(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("cwd", REPO)
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def out(cmd, **kw):
    return run(cmd, capture_output=True, text=True, **kw).stdout.strip()


def peak_rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def stop_process(proc, sig):
    """Ends `proc` with `sig` if it still runs; killed if it is not gone ten seconds later."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- machine and build


def machine():
    model = ""
    for line in out(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    load = os.getloadavg()
    tool_version = lambda cmd: out(cmd, check=False).splitlines()[0] if shutil.which(cmd[0]) else "missing"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model or platform.processor(),
        "arch": platform.machine(),
        "kernel": platform.release(),
        "load": f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        "rustc": out(["rustc", "-V"]),
        "cargo-lambda": tool_version(["cargo-lambda", "lambda", "--version"]),
        "wrk": (out(["wrk", "-v"], check=False) or "wrk").splitlines()[0],
        "commit": out(["git", "rev-parse", "--short", "HEAD"], check=False) or "?",
        "dirty": bool(out(["git", "status", "--porcelain", "--untracked-files=no"], check=False)),
    }


class Build:
    def __init__(self, smoke):
        self.profile = "debug" if smoke else "release"
        self.dir = REPO / "target" / self.profile

    def run(self):
        flag = [] if self.profile == "debug" else ["--release"]
        say(f"==> cargo build ({self.profile}): each function alone (as sam builds it), local, bench tool, hello world")
        # Each Lambda function on its own, as `sam build` builds it: in one workspace
        # build the functions share a feature set with `local` (TLS in the gateway, for
        # one). Kept under target/bench/functions, since the next build overwrites them.
        self.alone = REPO / "target" / "bench" / "functions" / self.profile
        self.alone.mkdir(parents=True, exist_ok=True)
        for f in FUNCTIONS:
            run(["cargo", "build", "-q", *flag, "-p", f])
            shutil.copy2(self.dir / f, self.alone / f)
        run(["cargo", "build", "-q", *flag, "-p", "local"])
        run(["cargo", "build", "-q", *flag, "-p", "bench", "--examples"])

    def bin(self, name):
        """A binary of the build; a function's is the one built alone."""
        return self.alone / name if name in FUNCTIONS else self.dir / name

    def example(self, name):
        return self.dir / "examples" / name

    def tool(self, *args):
        return out([str(self.example("bench")), *map(str, args)])

    def tool_json(self, *args):
        return json.loads(self.tool(*args))


# ---------------------------------------------------------------- the local stack


class Stack:
    def __init__(self, build, env):
        self.ports = {k: net.free_port() for k in ("auth", "users", "gateway")}
        full = {
            "PATH": os.environ["PATH"],
            "JWT_SECRET": SECRET,
            "AUTH_PORT": str(self.ports["auth"]),
            "USERS_PORT": str(self.ports["users"]),
            "GATEWAY_PORT": str(self.ports["gateway"]),
            "RUST_LOG": "info",
            **env,
        }
        self.proc = subprocess.Popen(
            [str(build.bin("local"))], env=full, cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            net.wait_until(lambda: self.healthy(), self.proc, "local", 30)
        except net.NotUp as e:
            self.stop()
            raise SystemExit(str(e)) from None

    def healthy(self):
        try:
            return net.call_json("GET", self.url("gateway", "/"), timeout=2)[0] == 200
        except (OSError, net.NoAnswer):
            return False

    def url(self, service, path):
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def peak_rss_kib(self):
        return peak_rss_kib(self.proc.pid)

    def stop(self):
        stop_process(self.proc, signal.SIGINT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def register(stack, username):
    status, body = net.call_json("POST", stack.url("gateway", "/api/register"), {
        "username": username, "email": f"{username}@example.com", "password": PASSWORD,
    })
    if status != 200:
        raise SystemExit(f"register answered {status} {body}")
    return body["user_id"]


def sid_of(token):
    """The session id (`sid` claim) of an access token, read without verifying it."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


def login(stack, username):
    status, body = net.call_json("POST", stack.url("gateway", "/api/login"), {"username": username, "password": PASSWORD})
    if status != 200:
        raise SystemExit(f"login answered {status} {body}")
    return body["token"]


# ---------------------------------------------------------------- wrk

WRK_TOKENS_LUA = """
-- Round-robin over the bearer tokens in $BENCH_TOKENS; each wrk thread walks its own
-- share of them, so no two threads send the same token close together. Each token's
-- request is formatted once, at init: formatting it anew for every request (wrk.format
-- in request()) cost wrk about 1.8 µs of CPU per request, taken from the same cores as
-- the code under test.
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  requests = {}
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    requests[#requests + 1] = wrk.format("GET", nil, {["Authorization"] = "Bearer " .. line})
  end
  step = tonumber(os.getenv("BENCH_THREADS"))
  n = id
end
function request()
  n = n + step
  return requests[(n % #requests) + 1]
end
"""

WRK_LOGIN_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_LOGIN_BODY")
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def wrk(url, threads, connections, secs, script, env):
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{secs}s", "--latency", "-s", script, url]
    text = out(cmd, env={**os.environ, **env})
    res = {"text": text}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\b", text, re.M)
        res[f"p{pct}"] = float(m.group(1)) * UNITS[m.group(2)] if m else None
    m = re.search(r"(\d+) requests in", text)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:.*", text)
    res["socket_errors"] = m.group(0) if m else ""
    return res


# ---------------------------------------------------------------- 1. authenticated read


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of a process and its children (nginx's worker), in seconds."""
    return sum(cpu_split(pid))


def cpu_split(pid, thread=None):
    """(user, system) CPU seconds of a process and its children (nginx's worker), or of its
    threads named `thread` only (the local stack's gateway runs on a thread of its own)."""
    if thread:
        stats = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                if (task / "comm").read_text().strip() == thread:
                    stats.append(task / "stat")
            except OSError:
                continue
    else:
        pids = [pid]
        try:
            pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            pass
        stats = [Path(f"/proc/{each}/stat") for each in pids]
    user = system = 0.0
    for stat in stats:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / CLK_TCK
        system += int(fields[12]) / CLK_TCK
    return user, system


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log {access_log};
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream users {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://users;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


class Proxy:
    """A reference proxy in front of users, started as its own process; `stop_signal`
    ends it gracefully."""

    name = "proxy"
    stop_signal = signal.SIGTERM

    def start(self, cmd, env=None):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})
        try:
            net.wait_listening(self.port, self.proc, self.name, 10, interval=0.05)
        except net.NotUp:
            self.stop()
            raise SystemExit(f"{self.name} did not start") from None

    def stop(self):
        stop_process(self.proc, self.stop_signal)


class Nginx(Proxy):
    """Debian's nginx, one worker, as a minimal reverse proxy with keepalive to users; with
    `access_log`, one line per request (its default `combined` format) to its stdout, which
    is /dev/null as the local stack's is."""

    name = "nginx"
    stop_signal = signal.SIGQUIT

    def __init__(self, upstream_port, tmp, access_log=False):
        self.port = net.free_port()
        conf_dir = tmp / f"nginx-{self.port}"
        conf_dir.mkdir()
        conf = conf_dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=conf_dir, upstream=upstream_port, port=self.port,
                                          access_log="/dev/stdout" if access_log else "off"))
        self.start([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf)])


class BareProxy(Proxy):
    """bench/examples/bare_proxy.rs on one thread: axum with no middleware and no logs,
    forwarding with the gateway's own client; the floor of a hop on this stack."""

    name = "bare_proxy"

    def __init__(self, build, upstream_port):
        self.port = net.free_port()
        self.start([str(build.example("bare_proxy")), str(self.port), f"http://127.0.0.1:{upstream_port}", "1"])


class SeedService(Proxy):
    """One service of bench/examples/seed_chain.rs."""

    def __init__(self, build, role, *urls):
        self.name = f"seed_chain {role}"
        self.port = net.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start([str(build.example("seed_chain")), role, str(self.port), *urls], {"JWT_SECRET": SECRET})


class SeedChain:
    """The reference chain of benchmark 1 (bench/examples/seed_chain.rs): the seed's topology
    built as the replaced services are described (axum, reqwest, jsonwebtoken, in-memory state,
    no logging), three processes: gateway → users → auth `/validate` per request."""

    def __enter__(self):
        return self

    def __init__(self, build):
        self.parts = []
        try:
            auth = SeedService(build, "auth")
            self.parts.append(auth)
            users = SeedService(build, "users", auth.url)
            self.parts.append(users)
            self.gateway = SeedService(build, "gateway", auth.url, users.url)
            self.parts.append(self.gateway)
        except BaseException:
            self.stop()
            raise

    def pids(self):
        return [part.proc.pid for part in self.parts]

    def stop(self):
        for part in reversed(self.parts):
            part.stop()

    def __exit__(self, *exc):
        self.stop()


# What each row of benchmark 1 runs: (key, label, AUTH_MODE, where wrk sends, logs on,
# many tokens).
READ_ROWS = [
    ("direct", "straight to users, no hop (in-process tokens)", "local", "users", True, True),
    ("gateway", "through the gateway, in-process tokens", "local", "gateway", True, True),
    ("nginx_logs", "through nginx (reference proxy) to users, its access log on (a line per request "
     "to /dev/null, like the gateway's)", "local", "nginx", True, True),
    ("direct_quiet", "straight to users, logs and metrics off", "local", "users", False, True),
    ("quiet", "through the gateway, in-process tokens, logs and metrics off", "local", "gateway", False, True),
    ("nginx", "through nginx (reference proxy) to users, in-process tokens, no access log", "local", "nginx",
     True, True),
    ("bare", "through a bare axum proxy on one thread (no middleware, no logs; the gateway's client) "
     "to users, in-process tokens", "local", "bare", True, True),
    ("seed", "seed topology, ours: gateway → users → auth `/validate` per request (AUTH_MODE=remote)",
     "remote", "gateway", True, True),
    ("reference", "seed topology as the seed services are built: three processes (axum, reqwest, "
     "jsonwebtoken, no logs), gateway → users → auth `/validate` per request; CPU and RSS of the "
     "three together", "", "reference", False, True),
    ("cached", "AUTH_MODE=remote, one token (users' 30 s cache hits)", "remote", "gateway", True, False),
]


def measure(url, tokens, script, p, pids, proxy_pids=(), hop_of=None):
    """wrk at `url` with `tokens` in turn after a warm-up, and the CPU per request of the
    processes `pids` (and apart, of `proxy_pids`) over the measured run; `hop_of` answers
    the (user, system) CPU seconds of the hop's own process or thread."""
    wrk_env = {"BENCH_TOKENS": str(tokens), "BENCH_THREADS": "2"}
    wrk(url, 2, p["connections"], p["warmup"], str(script), wrk_env)
    total = lambda each: sum(cpu_seconds(pid) for pid in each)  # noqa: E731
    # wrk's own CPU time too (the load generator runs on the same cores): what this
    # process's waited-for children used.
    children = lambda: sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])  # noqa: E731
    cpu0, proxy0, split0, wrk0 = total(pids), total(proxy_pids), hop_of() if hop_of else None, children()
    res = wrk(url, 2, p["connections"], p["secs"], str(script), wrk_env)
    cpu1, proxy1, split1, wrk1 = total(pids), total(proxy_pids), hop_of() if hop_of else None, children()
    n = max(res["requests"], 1)
    res["cpu_us"] = (cpu1 - cpu0) * 1e6 / n
    res["wrk_cpu_us"] = (wrk1 - wrk0) * 1e6 / n
    res["proxy_cpu_us"] = (proxy1 - proxy0) * 1e6 / n if proxy_pids else None
    if hop_of:
        res["hop_user_us"] = (split1[0] - split0[0]) * 1e6 / n
        res["hop_sys_us"] = (split1[1] - split0[1]) * 1e6 / n
    return res


def create_profile(gateway, user_id, token):
    """The profile benchmark 1 reads, created through the gateway at `gateway`."""
    status, body = net.call_json("POST", f"{gateway}/api/users", {
        "user_id": user_id, "username": "bench_reader", "email": "bench_reader@example.com",
        "full_name": "Bench Reader", "bio": "reads",
    }, token=token)
    if status != 200:
        raise SystemExit(f"create profile at {gateway} answered {status} {body}")


def read_stack(build, p, tmp, script, key, mode, target, logs, count):
    """One row of benchmark 1 on the local stack, straight or behind a proxy."""
    env = {"AUTH_MODE": mode, "BCRYPT_COST": "4"}
    if not logs:
        env.update(RUST_LOG="off", METRICS="off")
    with Stack(build, env) as stack:
        user_id = register(stack, "bench_reader")
        token = login(stack, "bench_reader")
        create_profile(stack.url("gateway", ""), user_id, token)
        tokens = tmp / f"tokens-{count}.txt"
        # Tokens of the login's session: each its own jti, all live while it is.
        tokens.write_text(build.tool("tokens", "--secret", SECRET, "--user-id", user_id,
                                     "--username", "bench_reader", "--session-id", sid_of(token),
                                     "--count", count) + "\n")
        proxy = (Nginx(stack.ports["users"], tmp, access_log=key == "nginx_logs") if target == "nginx"
                 else BareProxy(build, stack.ports["users"]) if target == "bare" else None)
        try:
            base = f"http://127.0.0.1:{proxy.port}" if proxy else stack.url(target, "")
            # The hop's own user and kernel time: the proxy process's, or the gateway
            # thread's in the stack.
            hop_of = ((lambda: cpu_split(proxy.proc.pid)) if proxy else
                      (lambda: cpu_split(stack.proc.pid, "gateway")) if target == "gateway" else None)
            res = measure(f"{base}/api/users/{user_id}", tokens, script, p, [stack.proc.pid],
                          [proxy.proc.pid] if proxy else [], hop_of)
        finally:
            if proxy:
                proxy.stop()
        res["rss_kib"] = stack.peak_rss_kib()
    return res


def read_reference(build, p, tmp, script, count):
    """The row of the seed-style reference chain: the same request and tokens (the chain's
    auth checks them with the same secret), the profile created through its gateway."""
    user_id = str(uuid.uuid4())
    with SeedChain(build) as chain:
        issued = build.tool("tokens", "--secret", SECRET, "--user-id", user_id,
                            "--username", "bench_reader", "--count", count)
        create_profile(chain.gateway.url, user_id, issued.split("\n", 1)[0])
        tokens = tmp / f"tokens-reference-{count}.txt"
        tokens.write_text(issued + "\n")
        res = measure(f"{chain.gateway.url}/api/users/{user_id}", tokens, script, p, chain.pids())
        peaks = [peak_rss_kib(pid) for pid in chain.pids()]
        res["rss_kib"] = sum(peaks) if None not in peaks else None
    return res


def bench_read(build, p, tmp):
    say("==> 1. GET /api/users/{id}: straight, through the gateway, through nginx and a bare proxy, "
        "seed topology (ours and the seed-style reference)")
    script = tmp / "tokens.lua"
    script.write_text(WRK_TOKENS_LUA)
    rows = []
    for key, label, mode, target, logs, many in READ_ROWS:
        if target == "nginx" and not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
            say("    nginx missing: its row is left out")
            continue
        count = p["tokens"] if many else 1
        res = (read_reference(build, p, tmp, script, count) if target == "reference" else
               read_stack(build, p, tmp, script, key, mode, target, logs, count))
        res.update(key=key, mode=mode, label=label, tokens=count, logs=logs)
        extra = f" + {target} {res['proxy_cpu_us']:.1f}" if res["proxy_cpu_us"] is not None else ""
        say(f"    {label}: {res['rps']:.0f} req/s, p50 {res['p50']} ms, p99 {res['p99']} ms, "
            f"CPU {res['cpu_us']:.1f} µs/request{extra}, non-2xx {res['non2xx']}")
        rows.append(res)
    return rows


# ---------------------------------------------------------------- 2. login at the bcrypt limit


def bench_login(build, p, tmp):
    say(f"==> 2. POST /login at BCRYPT_COST={p['cost']} vs raw bcrypt; GET / p99 meanwhile")
    script = tmp / "login.lua"
    script.write_text(WRK_LOGIN_LUA)
    env = {
        "AUTH_MODE": "local", "BCRYPT_COST": str(p["cost"]),
        "LOGIN_MAX_FAILURES_PER_USER": "1000000", "LOGIN_MAX_FAILURES_PER_IP": "1000000",
        "REGISTER_MAX_PER_IP": "1000000",
    }
    with Stack(build, env) as stack:
        register(stack, "bench_login")
        body = json.dumps({"username": "bench_login", "password": PASSWORD})
        wrk_env = {"BENCH_LOGIN_BODY": body}
        conns = 2 * (os.cpu_count() or 1)
        login_url = stack.url("auth", "/login")
        loader = subprocess.Popen(
            ["wrk", "-t1", f"-c{conns}", f"-d{p['login_secs']}s", "--latency", "-s", str(script), login_url],
            env={**os.environ, **wrk_env}, stdout=subprocess.PIPE, text=True,
        )
        time.sleep(p["login_secs"] * 0.15)
        probe = build.tool_json("probe", "--url", stack.url("auth", "/"), "--rate", 50,
                                "--secs", round(p["login_secs"] * 0.7, 1))
        text, _ = loader.communicate()
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    logins = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    non2xx = int(m.group(1)) if m else 0
    raw = build.tool_json("bcrypt", "--cost", p["cost"], "--secs", p["bcrypt_secs"])
    say(f"    logins/s {logins:.2f} (non-2xx {non2xx}); raw bcrypt {raw['per_sec']:.2f}/s on "
        f"{raw['threads']} threads; GET / p99 {f1(probe['p99_ms'], 2)} ms")
    return {"logins": logins, "non2xx": non2xx, "connections": conns, "raw": raw, "probe": probe,
            "cost": p["cost"]}


# ---------------------------------------------------------------- 3. cold start, and RSS under the stub


def lambda_env(name, variant, dead):
    env = {"JWT_SECRET": SECRET, "RUST_LOG": "info"}
    if name == "gateway":
        env.update(AUTH_SERVICE_URL=dead, USER_SERVICE_URL=dead)
    if variant == "dynamodb":
        env.update(STORE="dynamodb", DYNAMODB_ENDPOINT=dead, AWS_ACCESS_KEY_ID="AKIDBENCH",
                   AWS_SECRET_ACCESS_KEY="bench", AWS_SESSION_TOKEN="bench")
    return env


def lambda_cmd(build, exe, events, env, runs, invocations, tokens=("--secret", SECRET)):
    """`bench lambda`: `exe` under the Runtime API stub with `env`, given `events` (names
    under EVENTS); `tokens` says what replaces TOKEN in them (by default a token signed
    with SECRET)."""
    args = ["lambda", "--exe", exe, "--runs", runs, "--invocations", invocations, *tokens]
    for e in events:
        args += ["--event", EVENTS / f"{e}.json"]
    for k, v in env.items():
        args += ["--env", f"{k}={v}"]
    return build.tool_json(*args)


def labelled_rows(cases, measure, summary):
    """One row a case `(label, *rest)`: what `measure(*rest)` answers, with its label,
    said in a line `label: summary(row)`."""
    rows = []
    for label, *rest in cases:
        res = measure(*rest)
        res["label"] = label
        say(f"    {label}: {summary(res)}")
        rows.append(res)
    return rows


def bench_cold(build, p, tmp):
    say(f"==> 3. cold start under a Runtime API stub, median of {p['runs']} runs")
    dead = f"http://127.0.0.1:{net.free_port()}"
    (tmp / "no-certs").mkdir(exist_ok=True)
    one_bundle = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "SSL_CERT_DIR": str(tmp / "no-certs")}
    # The first root of the bundle alone: what the TLS roots cost, by difference.
    bundle = Path(one_bundle["SSL_CERT_FILE"]).read_text()
    end = "-----END CERTIFICATE-----"
    (tmp / "one-root.pem").write_text(bundle[bundle.index("-----BEGIN CERTIFICATE-----"):bundle.index(end) + len(end)] + "\n")
    one_root = {**one_bundle, "SSL_CERT_FILE": str(tmp / "one-root.pem")}
    cases = [
        ("hello world (lambda_http)", build.example("hello"), "auth-health", {}),
        ("auth", build.bin("auth"), "auth-health", lambda_env("auth", "memory", dead)),
        ("auth, STORE=dynamodb at a dead endpoint (roots compiled in, as deployed)", build.bin("auth"), "auth-health",
         lambda_env("auth", "dynamodb", dead)),
        ("auth, STORE=dynamodb at a dead endpoint, roots read from SSL_CERT_FILE (the system's bundle)", build.bin("auth"),
         "auth-health", {**lambda_env("auth", "dynamodb", dead), **one_bundle}),
        ("auth, STORE=dynamodb at a dead endpoint, SSL_CERT_FILE with one root certificate (what reading the bundle costs)",
         build.bin("auth"), "auth-health", {**lambda_env("auth", "dynamodb", dead), **one_root}),
        ("users", build.bin("users"), "users-health", lambda_env("users", "memory", dead)),
        ("users, STORE=dynamodb at a dead endpoint (roots compiled in, as deployed)", build.bin("users"), "users-health",
         lambda_env("users", "dynamodb", dead)),
        ("gateway as deployed (no service URLs: no HTTPS client)", build.bin("gateway"), "gateway-health",
         {k: v for k, v in lambda_env("gateway", "memory", dead).items() if not k.endswith("_SERVICE_URL")}),
        ("gateway with service URLs", build.bin("gateway"), "gateway-health", lambda_env("gateway", "memory", dead)),
        ("gateway with service URLs, SSL_CERT_FILE set (its build has no TLS: nothing read)", build.bin("gateway"), "gateway-health",
         {**lambda_env("gateway", "memory", dead), **one_bundle}),
    ]
    return labelled_rows(
        cases, lambda exe, event, env: lambda_cmd(build, exe, [event], env, p["runs"], 1),
        lambda res: f"median {res['median_ms']:.2f} ms (min {res['min_ms']:.2f}, p90 {res['p90_ms']:.2f}); "
                    f"first answers {sorted(set(map(str, res['first_status'])))}")


def bench_cold_tls(build, p, tmp):
    say(f"==> 3b. first request after a cold start, DynamoDB over TLS (moto behind a test CA), median of {p['runs']} runs")
    tls = tls_files(tmp)
    port = net.free_port()
    endpoint = f"https://127.0.0.1:{port}"
    aws = {"AWS_ACCESS_KEY_ID": "AKIDBENCH", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
    moto = subprocess.Popen([sys.executable, "scripts/emulator/moto_serial.py", "-p", str(port), "--exit-with-parent",
                             "--tls", str(tls["cert"]), str(tls["key"])],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        try:
            net.wait_listening(port, moto, "moto over TLS")
        except net.NotUp:
            raise SystemExit("moto over TLS did not start") from None
        run([sys.executable, "-m", "scripts.emulator.create_tables", "--endpoint", endpoint],
            env={**os.environ, **aws, "AWS_CA_BUNDLE": str(tls["ca"])}, capture_output=True)
        store = {"STORE": "dynamodb", "DYNAMODB_ENDPOINT": endpoint, "SSL_CERT_FILE": str(tls["bundle"]),
                 "SSL_CERT_DIR": str(tmp / "no-certs"), **aws}
        (tmp / "no-certs").mkdir(exist_ok=True)
        # alice (auth-login's user) with a cost-4 hash, so that bcrypt does not hide the I/O.
        with Stack(build, {**store, "BCRYPT_COST": "4"}) as stack:
            status, body = net.call_json("POST", stack.url("gateway", "/api/register"), {
                "username": "alice", "email": "alice@example.com", "password": PASSWORD})
            if status != 200:
                raise SystemExit(f"register over TLS DynamoDB answered {status} {body}")
            user_id = body["user_id"]
            token = login(stack, "alice")
            status, body = net.call_json("POST", stack.url("gateway", "/api/users"), {
                "user_id": user_id, "username": "alice", "email": "alice@example.com",
                "full_name": "Alice Smith", "bio": "bench"}, token=token)
            if status not in (200, 201):
                raise SystemExit(f"create profile over TLS DynamoDB answered {status} {body}")
        cases = [
            ("hello world (lambda_http), health", build.example("hello"), "auth-health", {}, []),
            ("users: GET /users/{id} (token and session checked, profile read)", build.bin("users"),
             "users-get", {**store, "JWT_SECRET": SECRET}, ["--token", token, "--user-id", user_id]),
            ("auth: POST /login (cost-4 hash)", build.bin("auth"), "auth-login",
             {**store, "JWT_SECRET": SECRET, "RUST_LOG": "info"}, []),
        ]
        return labelled_rows(
            cases, lambda exe, event, env, tokens: lambda_cmd(build, exe, [event], env, p["runs"], 2, tokens),
            lambda res: f"cold {res['median_ms']:.2f} ms (min {res['min_ms']:.2f}), warm "
                        f"{res['warm_median_ms']:.2f} ms; statuses {res['statuses']}")
    finally:
        moto.terminate()
        moto.wait()



def bench_stub_rss(build, p):
    say(f"==> 4b. peak RSS of each Lambda binary after {p['invocations']} invocations under the stub")
    dead = f"http://127.0.0.1:{net.free_port()}"
    cases = [
        ("hello world", build.example("hello"), ["auth-health"], {}),
        ("auth", build.bin("auth"), ["auth-register", "auth-login", "auth-validate", "auth-refresh",
                                     "auth-logout", "auth-health"],
         {**lambda_env("auth", "memory", dead), "BCRYPT_COST": "4",
          "LOGIN_MAX_FAILURES_PER_USER": "1000000", "LOGIN_MAX_FAILURES_PER_IP": "1000000",
          "REGISTER_MAX_PER_IP": "1000000"}),
        ("users", build.bin("users"), ["users-create", "users-get", "users-update", "users-list",
                                       "users-delete", "users-health"], lambda_env("users", "memory", dead)),
        ("gateway", build.bin("gateway"), ["gateway-health", "gateway-unknown-route"],
         lambda_env("gateway", "memory", dead)),
    ]
    return labelled_rows(
        cases, lambda exe, events, env: lambda_cmd(build, exe, events, env, 1, p["invocations"]),
        lambda res: f"VmHWM {res['peak_rss_kib'] / 1024:.1f} MiB; statuses {res['statuses']}")


# ---------------------------------------------------------------- 4. size


def cert_files():
    try:
        return sum(1 for _ in Path("/etc/ssl/certs").iterdir())
    except OSError:
        return 0


def zip_size(binary, tmp):
    path = tmp / f"{binary.name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(binary, "bootstrap")
    return path.stat().st_size


def bench_size(build, p, tmp):
    say("==> 4. size: stripped bootstrap and zip")
    rows = []
    names = [(f, build.bin(f)) for f in FUNCTIONS] + [("hello world", build.example("hello"))]
    for name, binary in names:
        rows.append({"name": name, "target": f"{platform.machine()} ({build.profile}, built alone)",
                     "bootstrap": binary.stat().st_size, "zip": zip_size(binary, tmp)})
    if p["arm64"]:
        rows += arm64_sizes()
    for r in rows:
        say(f"    {r['name']} [{r['target']}]: bootstrap {r['bootstrap'] / MIB:.2f} MiB, zip {r['zip'] / MIB:.2f} MiB")
    return rows


def arm64_sizes():
    installed = out(["rustup", "target", "list", "--installed"], check=False)
    if "aarch64-unknown-linux-gnu" not in installed:
        say("    aarch64-unknown-linux-gnu is not installed: arm64 sizes skipped")
        return []
    lambda_dir = REPO / "target" / "lambda"
    say("    cargo lambda build --release --arm64 --output-format zip (as `sam build` does)")
    try:
        run(["cargo", "lambda", "build", "--release", "--arm64", "--output-format", "zip",
             "--bin", "auth", "--bin", "users", "--bin", "gateway"], capture_output=True, text=True)
        run(["cargo", "lambda", "build", "--release", "--arm64", "--output-format", "zip",
             "-p", "bench", "--example", "hello"], capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        say(f"    cargo lambda build failed; arm64 sizes skipped:\n{err.stderr[-2000:]}")
        return []
    rows = []
    for name in FUNCTIONS + ["hello"]:
        zpath = lambda_dir / name / "bootstrap.zip"
        if not zpath.exists():
            say(f"    {zpath} missing")
            continue
        with zipfile.ZipFile(zpath) as z:
            boot = z.getinfo("bootstrap").file_size
        rows.append({"name": "hello world" if name == "hello" else name,
                     "target": "aarch64 (cargo lambda, release)", "bootstrap": boot,
                     "zip": zpath.stat().st_size})
    return rows


# ---------------------------------------------------------------- 5. DynamoDB calls


def bench_dynamodb(tmp):
    say("==> 5. DynamoDB calls per endpoint, counted against the emulator (local/tests/integration/dynamodb_calls.rs)")
    calls_file = tmp / "dynamodb-calls.json"
    env = {**os.environ, "BENCH_DYNAMODB_CALLS": str(calls_file), "CI": "1"}
    nextest = subprocess.run(["cargo", "nextest", "--version"], cwd=REPO, capture_output=True).returncode == 0
    cmd = (["cargo", "nextest", "run", "--workspace", "--no-fail-fast",
            "-E", "package(local) & test(/^dynamodb_calls::/)"]
           if nextest else ["cargo", "test", "-p", "local", "--test", "integration", "dynamodb_calls::"])
    run(cmd, env=env, stdout=subprocess.DEVNULL)
    rows = json.loads(calls_file.read_text())
    for r in rows:
        r["usd_per_million"] = r["rru"] * PRICE_PER_MILLION_RRU + r["wru"] * PRICE_PER_MILLION_WRU
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="debug build, short runs; output under target/bench")
    ap.add_argument("--out", help="where to write the report (default BENCHMARKS.md; smoke: target/bench/)")
    ap.add_argument("--only", choices=["read", "cold"],
                    help="run only that benchmark and print its figures (no report)")
    ap.add_argument("--render", metavar="RESULTS",
                    help="write the report from a run's saved figures (target/bench/results*.json), measuring nothing")
    args = ap.parse_args()
    smoke = args.smoke
    p = {
        "connections": 32, "secs": 2 if smoke else 15, "warmup": 1 if smoke else 3,
        "tokens": 4096, "cost": 4 if smoke else 12, "login_secs": 2 if smoke else 20,
        "bcrypt_secs": 1 if smoke else 10, "runs": 3 if smoke else 20,
        "invocations": 30 if smoke else 600, "arm64": not smoke,
    }
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        write_report(saved["machine"], saved["params"], saved["results"], saved["smoke"],
                     saved["cert_files"], args.out)
        return
    m = machine()
    say(f"machine: {m['cores']} cores, {m['cpu']}, load {m['load']}")
    build = Build(smoke)
    build.run()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmpname:
        tmp = Path(tmpname)
        if args.only == "cold":
            values, missed = report.cold_section(bench_cold(build, p, tmp))
            tls_values, tls_missed = report.cold_tls_section(bench_cold_tls(build, p, tmp))
            print(values["cold_table"], tls_values["cold_tls_table"], *missed, *tls_missed, sep="\n\n")
            return
        read = bench_read(build, p, tmp)
        if args.only == "read":
            values, missed = report.read_section(read, os.cpu_count())
            print(values["read_table"], values["read_targets"], values["read_logging"], sep="\n\n")
            return
        login_res = bench_login(build, p, tmp)
        cold = bench_cold(build, p, tmp)
        cold_tls = bench_cold_tls(build, p, tmp)
        stub_rss = bench_stub_rss(build, p)
        sizes = bench_size(build, p, tmp)
        calls = bench_dynamodb(tmp)
    results = {"read": read, "login": login_res, "cold": cold, "cold_tls": cold_tls, "stub_rss": stub_rss, "sizes": sizes, "calls": calls}
    saved = REPO / "target" / "bench" / ("results.smoke.json" if smoke else "results.json")
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"machine": m, "params": p, "results": results, "smoke": smoke,
                                 "cert_files": cert_files()}, indent=1, default=str))
    say(f"==> figures saved to {saved} (re-render with --render)")
    write_report(m, p, results, smoke, cert_files(), args.out)


def write_report(m, p, results, smoke, certs, out_path):
    text, missed = report.render(m, p, results, smoke, certs)
    dest = Path(out_path) if out_path else (
        REPO / "target" / "bench" / "BENCHMARKS.smoke.md" if smoke else REPO / "BENCHMARKS.md")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    print(text)
    say(f"==> written to {dest}; {len(missed)} target(s) missed")


if __name__ == "__main__":
    main()
