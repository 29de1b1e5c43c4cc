#!/usr/bin/env python3
"""DynamoDB over TLS, as the functions reach it in AWS: moto behind a throwaway CA
(scripts/lib/testca.py), and the local stack (LOCAL_BIN, default target/debug/local) on
STORE=dynamodb at its https:// endpoint.

1. With SSL_CERT_FILE at a bundle holding the CA, a user registers, logs in and
   creates and reads a profile: TLS handshake, SNI by IP address, signing and the
   connection pool of the DynamoDB client's own HTTP client
   (crates/aws-client/src/https.rs) all work.
2. With neither SSL_CERT_FILE nor SSL_CERT_DIR, the client trusts only its compiled-in
   roots (Mozilla's): the same server is refused (503 JSON, the log says the issuer is
   unknown), never a hang, and nothing is written.
3. The gateway forwards to an https:// USER_SERVICE_URL (the local stack's gateway has
   TLS, through the workspace's features): an upstream behind the same CA gets the
   request with its path and headers and its answer comes back, when SSL_CERT_FILE holds
   the CA; without it the same upstream is refused with the API's 503, never a hang.

Run by scripts/test.sh with the tools venv's Python (moto, cryptography, boto3):
python -m scripts.steps.check_dynamodb_tls, from the repository's root.
"""

import http.server
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from scripts.lib import REPO, net
from scripts.lib.testca import tls_files

SECRET = "dynamodb-tls-check-secret-at-least-32-bytes"
PASSWORD = "securePassword123"


def wait_listening(port, proc, what):
    try:
        net.wait_listening(port, proc, what)
    except net.NotUp as e:
        raise SystemExit(str(e)) from None


def expect(what, got, status):
    if got[0] != status:
        raise SystemExit(f"FAIL {what}: expected {status}, got {got[0]} {got[1]}")
    print(f"ok   {what}: {status}")
    return got[1]


class Stack:
    def __init__(self, env, log):
        self.ports = [net.free_port() for _ in range(3)]
        full = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
        full.update(env, AUTH_PORT=str(self.ports[0]), USERS_PORT=str(self.ports[1]),
                    GATEWAY_PORT=str(self.ports[2]), JWT_SECRET=SECRET, BCRYPT_COST="4",
                    RUST_LOG="info", RUST_LOG_STYLE="never")
        self.log = log
        self.proc = subprocess.Popen([os.environ.get("LOCAL_BIN", str(REPO / "target/debug/local"))],
                                     env=full, stdout=log.open("w"), stderr=subprocess.STDOUT)
        wait_listening(self.ports[2], self.proc, "the local stack")
        self.base = f"http://127.0.0.1:{self.ports[2]}/api"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Upstream:
    """A JSON service over TLS (the test CA's certificate) that records each request."""

    def __init__(self, tls):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = json.dumps({"user_id": "u-1", "via": "tls"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls["cert"]), str(tls["key"]))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def check_gateway_forwarding(tls, tmp):
    upstream = Upstream(tls)
    try:
        env = {"USER_SERVICE_URL": upstream.url}
        with Stack({**env, "SSL_CERT_FILE": str(tls["bundle"])}, tmp / "gateway-trusted.log") as stack:
            got = net.call_json("GET", f"{stack.base}/users/u-1?x=1", token="abc.def.ghi",
                                headers={"x-request-id": "tls-forward-1"})
            if got != (200, {"user_id": "u-1", "via": "tls"}):
                raise SystemExit(f"FAIL the gateway did not relay the https upstream's answer: {got}")
            path, headers = upstream.seen[-1]
            # X-Forwarded-For goes to auth only (users reads no client address).
            if (path, headers.get("authorization"), headers.get("x-request-id"), headers.get("x-forwarded-for")) != (
                    "/users/u-1?x=1", "Bearer abc.def.ghi", "tls-forward-1", None):
                raise SystemExit(f"FAIL the upstream got {path} {headers}")
            print("ok   the gateway forwards over TLS (CA in SSL_CERT_FILE): path, query and headers arrive, the answer comes back")
        seen = len(upstream.seen)
        with Stack(env, tmp / "gateway-untrusted.log") as stack:
            started = time.time()
            got = net.call_json("GET", f"{stack.base}/users/u-1", token="abc.def.ghi")
            expect("forwarding to an upstream whose CA the gateway does not trust", got, 503)
            if set(got[1]) != {"status", "message"} or "unavailable" not in got[1]["message"]:
                raise SystemExit(f"FAIL the 503 is not the API's error: {got[1]}")
            if time.time() - started > 20:
                raise SystemExit("FAIL the refusal took more than 20 s")
            if len(upstream.seen) != seen:
                raise SystemExit("FAIL a request reached the upstream over an untrusted connection")
            log = stack.log.read_text()
            if "UnknownIssuer" not in log:
                raise SystemExit(f"FAIL the gateway's log does not say why:\n{log[-2000:]}")
            print("ok   the gateway's log names the cause: invalid peer certificate, UnknownIssuer")
    finally:
        upstream.close()


def main():
    tmp = Path(tempfile.mkdtemp(prefix="dynamodb-tls-"))
    tls = tls_files(tmp)
    port = net.free_port()
    endpoint = f"https://127.0.0.1:{port}"
    moto = subprocess.Popen([sys.executable, str(REPO / "scripts/emulator/moto_serial.py"), "-H", "127.0.0.1",
                             "-p", str(port), "--tls", str(tls["cert"]), str(tls["key"])],
                            stdout=(tmp / "moto.log").open("w"), stderr=subprocess.STDOUT)
    try:
        wait_listening(port, moto, "moto")
        aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
        subprocess.run([sys.executable, "-m", "scripts.emulator.create_tables", "--endpoint", endpoint,
                        "--accounts", "accounts", "--profiles", "profiles", "--security", "security"],
                       cwd=REPO, env={**os.environ, **aws, "AWS_CA_BUNDLE": str(tls["bundle"])}, check=True)
        env = {**aws, "STORE": "dynamodb", "DYNAMODB_ENDPOINT": endpoint}

        with Stack({**env, "SSL_CERT_FILE": str(tls["bundle"])}, tmp / "trusted.log") as stack:
            user = expect("register over TLS (CA in SSL_CERT_FILE)", net.call_json("POST", f"{stack.base}/register", {
                "username": "tls_user", "email": "tls_user@example.com", "password": PASSWORD}), 200)
            token = expect("login", net.call_json("POST", f"{stack.base}/login", {
                "username": "tls_user", "password": PASSWORD}), 200)["token"]
            profile = {"user_id": user["user_id"], "username": "tls_user", "email": "tls_user@example.com",
                       "full_name": "T L S", "bio": "over TLS"}
            expect("create the profile", net.call_json("POST", f"{stack.base}/users", profile, token), 200)
            got = expect("read it back", net.call_json("GET", f"{stack.base}/users/{user['user_id']}", token=token), 200)
            if got.get("bio") != "over TLS":
                raise SystemExit(f"FAIL the profile read back is not the one written: {got}")

        with Stack(env, tmp / "untrusted.log") as stack:
            started = time.time()
            got = net.call_json("POST", f"{stack.base}/register", {
                "username": "tls_stranger", "email": "tls_stranger@example.com", "password": PASSWORD})
            expect("register with the compiled-in roots only (test CA unknown)", got, 503)
            if set(got[1]) != {"status", "message"}:
                raise SystemExit(f"FAIL the 503 is not the API's error shape: {got[1]}")
            took = time.time() - started
            if took > 20:
                raise SystemExit(f"FAIL the refusal took {took:.1f} s")
            log = stack.log.read_text()
            if "UnknownIssuer" not in log:
                raise SystemExit(f"FAIL the log does not say why:\n{log[-2000:]}")
            print("ok   the log names the cause: invalid peer certificate, UnknownIssuer")

        with Stack({**env, "SSL_CERT_FILE": str(tls["bundle"])}, tmp / "again.log") as stack:
            expect("nothing was written by the refused registration", net.call_json("POST", f"{stack.base}/login", {
                "username": "tls_stranger", "password": PASSWORD}), 401)
    finally:
        moto.terminate()
        moto.wait(10)
    check_gateway_forwarding(tls, tmp)
    print("DynamoDB and the gateway's forwarding over TLS: all checks passed")


if __name__ == "__main__":
    main()
