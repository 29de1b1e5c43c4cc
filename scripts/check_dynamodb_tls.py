#!/usr/bin/env python3
"""DynamoDB over TLS, as the functions reach it in AWS: moto behind a throwaway CA
(scripts/testca.py), and the local stack (LOCAL_BIN, default target/debug/local) on
STORE=dynamodb at its https:// endpoint.

1. With SSL_CERT_FILE at a bundle holding the CA, a user registers, logs in and
   creates and reads a profile: TLS handshake, SNI by IP address, signing and the
   connection pool of the DynamoDB client's own HTTP client
   (functions/shared/src/store/dynamodb/https.rs) all work.
2. With neither SSL_CERT_FILE nor SSL_CERT_DIR, the client trusts only its compiled-in
   roots (Mozilla's): the same server is refused (503 JSON, the log says the issuer is
   unknown), never a hang, and nothing is written.

Run by scripts/test.sh with the tools venv's Python (moto, cryptography, boto3).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from testca import tls_files  # noqa: E402

SECRET = "dynamodb-tls-check-secret-at-least-32-bytes"
PASSWORD = "securePassword123"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, what, secs=30):
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on {port} within {secs} s")


def call(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def expect(what, got, status):
    if got[0] != status:
        raise SystemExit(f"FAIL {what}: expected {status}, got {got[0]} {got[1]}")
    print(f"ok   {what}: {status}")
    return got[1]


class Stack:
    def __init__(self, env, log):
        self.ports = [free_port() for _ in range(3)]
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


def main():
    tmp = Path(tempfile.mkdtemp(prefix="dynamodb-tls-"))
    tls = tls_files(tmp)
    port = free_port()
    endpoint = f"https://127.0.0.1:{port}"
    moto = subprocess.Popen([sys.executable, str(REPO / "scripts/moto_serial.py"), "-H", "127.0.0.1",
                             "-p", str(port), "--tls", str(tls["cert"]), str(tls["key"])],
                            stdout=(tmp / "moto.log").open("w"), stderr=subprocess.STDOUT)
    try:
        wait_listening(port, moto, "moto")
        aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
        subprocess.run([sys.executable, str(REPO / "scripts/create_tables.py"), "--endpoint", endpoint,
                        "--accounts", "accounts", "--profiles", "profiles", "--security", "security"],
                       env={**os.environ, **aws, "AWS_CA_BUNDLE": str(tls["bundle"])}, check=True)
        env = {**aws, "STORE": "dynamodb", "DYNAMODB_ENDPOINT": endpoint}

        with Stack({**env, "SSL_CERT_FILE": str(tls["bundle"])}, tmp / "trusted.log") as stack:
            user = expect("register over TLS (CA in SSL_CERT_FILE)", call("POST", f"{stack.base}/register", {
                "username": "tls_user", "email": "tls_user@example.com", "password": PASSWORD}), 200)
            token = expect("login", call("POST", f"{stack.base}/login", {
                "username": "tls_user", "password": PASSWORD}), 200)["token"]
            profile = {"user_id": user["user_id"], "username": "tls_user", "email": "tls_user@example.com",
                       "full_name": "T L S", "bio": "over TLS"}
            expect("create the profile", call("POST", f"{stack.base}/users", profile, token), 200)
            got = expect("read it back", call("GET", f"{stack.base}/users/{user['user_id']}", token=token), 200)
            if got.get("bio") != "over TLS":
                raise SystemExit(f"FAIL the profile read back is not the one written: {got}")

        with Stack(env, tmp / "untrusted.log") as stack:
            started = time.time()
            got = call("POST", f"{stack.base}/register", {
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
            expect("nothing was written by the refused registration", call("POST", f"{stack.base}/login", {
                "username": "tls_stranger", "password": PASSWORD}), 401)
    finally:
        moto.terminate()
        moto.wait(10)
    print("DynamoDB over TLS: all checks passed")


if __name__ == "__main__":
    main()
