"""Loopback plumbing of the scripts: a free port, waiting until a server is up, and one
JSON call over HTTP. Standard library only."""

import json
import socket
import time
import urllib.error
import urllib.request


class NotUp(Exception):
    """A server that exited or did not come up in time; the message says which."""


class NoAnswer(Exception):
    """A call that got no answer, or one whose body is not JSON; the message says which."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int, timeout: float = 1) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex(("127.0.0.1", port)) == 0


def answering(url: str, timeout: float = 2) -> bool:
    """Whether `url` answers HTTP at all (any status code counts)."""
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        pass
    except OSError:
        return False
    return True


def wait_until(ready, proc, what: str, secs: float, interval: float = 0.1, doing: str = "answer") -> None:
    """Polls `ready()` until it is true; raises NotUp when `proc` (a Popen, or None)
    exits first or `secs` pass ("<what> did not <doing> within <secs> s")."""
    deadline = time.monotonic() + secs
    while True:
        if proc is not None and proc.poll() is not None:
            raise NotUp(f"{what} exited with {proc.returncode}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise NotUp(f"{what} did not {doing} within {secs:g} s")
        time.sleep(interval)


def wait_listening(port: int, proc, what: str, secs: float = 30, interval: float = 0.1) -> None:
    """Waits until something listens on 127.0.0.1:`port` (see wait_until)."""
    wait_until(lambda: listening(port), proc, what, secs, interval, f"listen on port {port}")


def request(method: str, url: str, data: bytes | None = None, headers: dict | None = None,
            timeout: float = 30):
    """(status, headers, body bytes) of one HTTP call, whatever its status.
    Raises NoAnswer when there is no answer."""
    req = urllib.request.Request(url, data=data, method=method)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, TimeoutError, socket.timeout) as e:
        raise NoAnswer(f"{method} {url}: no answer ({e})") from e


def call_json(method: str, url: str, body=None, token: str | None = None, timeout: float = 30,
              headers: dict | None = None):
    """(status, parsed JSON body or None when empty) of one call; `body` is sent as JSON
    and `token` as a bearer token. Raises NoAnswer on no answer or a body not JSON."""
    data = None if body is None else json.dumps(body).encode()
    sent = dict(headers or {})
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    if token:
        sent["Authorization"] = f"Bearer {token}"
    status, _, raw = request(method, url, data, sent, timeout)
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError as e:
        raise NoAnswer(f"{method} {url}: {status} with a body that is not JSON: {raw[:200]!r}") from e
