#!/usr/bin/env python3
"""End-to-end checks of the API at any base URL, through its /api/* routes, as
docs/api.md describes them. Python 3.11 standard library only.

Usage: python -m scripts.steps.e2e --base-url URL [--expect local|emulated]
                      [--max-failures-per-user N] [--register-limit N]
                      [--mail-url URL | --no-mail]   (from the repository's root)

  local     the local stack (`target/debug/local`): URL is the gateway (port 3002)
  emulated  the API as template.yaml deploys it (`target/debug/local emulate`), or
            the deployed API itself (its ApiUrl)

Prints one line per passed check; stops at the first failed one with the request and
the answer, exit status 1. Groups: topology (health and unprefixed paths), contract
(the seed walk: register, login, validate, profile CRUD, paging, errors), refresh
(rotation and reuse), logout, account (sessions listed and ended, password change,
account deletion: no token survives the event that ends it), lockout, the mailed links
(verify, reset, email change: below), and the error shape of every error answer seen
(JSON {"status": "<code>", "message": ...}, `content-type: application/json`, a
request id header). Usernames are made of the time and a random part, so the suite
can run again against the same server; the profiles it creates are deleted again.

Where the two topologies differ (--expect):
  - GET /: the local gateway's health answer has `downstream` (auth and users probed);
    the deployed gateway function has no service URLs, so no `downstream`.
  - GET /register (unprefixed): the local gateway forwards it to auth, whose answer
    is 405 "Method not allowed"; deployed, only /api/* routes reach auth and this
    falls to $default, the gateway function: 404 "Route not found".
  - Request ids: deployed, /api/* goes from API Gateway straight to auth and users,
    so they set `x-request-id` themselves (API Gateway's id, or the caller's); API
    Gateway adds `apigw-requestid` beside it. This suite first found them missing
    there: auth and users used to leave the header to the gateway function.

Mailed links (issue 33): the mails are read where LocalStack's SES emulation shows
them, `GET <mail URL>?to=<address>` ({"messages": [{"Destination", "Subject", "Body":
{"text_part", "html_part"}}, ...]}): --mail-url, by default <base-url>/_aws/ses, which
the local stack's gateway serves from its mailbox and the emulated API from moto's SES,
which auth sends through under `local emulate` (--no-mail skips these groups). Each group has users of its own, as the mail limits count
per address and per user (3 an hour):
  - verify: registration mails a link to {APP_URL}/verify-email#token=...; the token at
    POST /api/email/verify makes the login's `email_verified` claim true; used twice, 400;
  - reset: POST /api/password/forgot for a known and an unknown address answers the
    same 202, and only the known one gets a mail; the link's token at
    /api/password/reset: 200, the old password 401, the new one 200, the session from
    before refused (access and refresh token), the link dead, a notice mailed;
  - email change: POST /api/email (bearer, password) 202, a link at the new address and
    a notice at the old one; POST /api/email/confirm 200; login still works; the old
    address is free to register, the new one taken.
Each run asks /password/forgot twice from the client address (20 an hour: about 10
runs an hour from one address).

Login limits: the lockout check registers a fresh user and expects the answer 429
after --max-failures-per-user wrong passwords (LOGIN_MAX_FAILURES_PER_USER, default 5
as in functions/auth/src/config.rs; template.yaml does not set it). Each run spends
10 attempts of the client address's budget (LOGIN_MAX_FAILURES_PER_IP, default 50 per
15-minute window; a wrong current password counts like a failed login), and the reset
group 1 more (the old password), so about 4 runs per window from one address; then
logins are 429.

Registration limit: each run makes 10 registration attempts that count against the
client address, 15 with the mail groups (the 409s included; REGISTER_MAX_PER_IP,
default 20 per hour; the template's RegisterMaxPerIp): about 1 run an hour from one
address at the default.
scripts/steps/test_emulated.sh raises it for the emulated API, and starts its local stack
with 17 and --register-limit 17. With --register-limit N (the target's
REGISTER_MAX_PER_IP, low on purpose), a last group registers until an answer is 429,
at most N + 1 times, and checks that 429 and its Retry-After; without the flag that
group is skipped, as it spends the address's whole budget.
"""
import argparse
import base64
import hashlib
import hmac
import json
import random
import re
import sys
import time
import urllib.parse
import uuid

from scripts.lib import net

PASSWORD = "e2e-Password-1"
NEW_PASSWORD = "e2e-New-Password-2"


class CheckFailed(Exception):
    pass


class Answer:
    def __init__(self, method, path, status, headers, text):
        self.request = f"{method} {path}"
        self.status, self.headers, self.text = status, headers, text
        try:
            self.json = json.loads(text) if text else None
        except ValueError:
            self.json = None

    def __str__(self):
        return f"{self.request} -> {self.status} {dict(self.headers)} {self.text[:500]!r}"


class Api:
    def __init__(self, base_url, expect):
        self.base, self.expect = base_url.rstrip("/"), expect
        self.error_answers = 0

    def call(self, method, path, body=None, token=None, raw=None, headers=None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {}
        if data is not None:
            sent["Content-Type"] = "application/json"
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        status, answer_headers, text = net.request(method, self.base + path, data, sent, timeout=30)
        answer = Answer(method, path, status, answer_headers, text.decode(errors="replace"))
        if answer.status >= 400:
            self.check_error_shape(answer)
        return answer

    def check_error_shape(self, answer):
        """Check 5, on every error answer: the API's error shape, its headers."""
        content_type = answer.headers.get("content-type", "")
        expect(content_type.split(";")[0].strip() == "application/json", answer,
               f"content-type {content_type!r}, not application/json")
        shape = isinstance(answer.json, dict) and set(answer.json) == {"status", "message"}
        expect(shape and answer.json["status"] == str(answer.status)
               and isinstance(answer.json["message"], str), answer,
               f'not the error shape {{"status": "{answer.status}", "message": ...}}')
        ids = ["x-request-id"] + (["apigw-requestid"] if self.expect == "emulated" else [])
        for header in ids:
            expect(answer.headers.get(header), answer, f"no {header} header")
        self.error_answers += 1


def expect(condition, answer, why):
    if not condition:
        raise CheckFailed(f"{why}\n  {answer}")


def ok(group, what):
    print(f"ok  {group}: {what}", flush=True)


def status(answer, code, keys=None):
    """The answer is `code` with a JSON object body (with exactly `keys` when given)."""
    expect(answer.status == code, answer, f"expected {code}")
    expect(isinstance(answer.json, dict), answer, "body is not a JSON object")
    if keys is not None:
        expect(set(answer.json) == set(keys), answer, f"expected the keys {sorted(keys)}")
    return answer.json


def error(answer, code, message, prefix=False):
    status(answer, code)
    got = answer.json["message"]
    expect(got.startswith(message) if prefix else got == message, answer, f"expected message {message!r}")


def is_uuid(text):
    try:
        return str(uuid.UUID(text)) == text
    except (TypeError, ValueError):
        return False


def fresh_name(tag):
    return f"e2e{tag}_{int(time.time())}_{random.randrange(16**6):06x}"


def register(api, name, email=None):
    answer = api.call("POST", "/api/register",
                      {"username": name, "email": email or f"{name}@example.com", "password": PASSWORD})
    body = status(answer, 200, {"user_id", "username", "message"})
    expect(is_uuid(body["user_id"]) and body["username"] == name
           and body["message"] == "User registered successfully", answer, "register answer")
    return body["user_id"]


def login(api, name, password=PASSWORD):
    answer = api.call("POST", "/api/login", {"username": name, "password": password})
    body = status(answer, 200, {"token", "token_type", "expires_in", "refresh_token"})
    expect(body["token"].count(".") == 2 and body["token_type"] == "Bearer", answer, "token, token_type")
    expect(isinstance(body["expires_in"], int) and body["expires_in"] > 0, answer, "expires_in")
    expect(isinstance(body["refresh_token"], str) and len(body["refresh_token"]) == 43, answer,
           "refresh_token of 43 characters")
    return body


def forged_token(user_id, name):
    """An HS256 JWT of the right shape signed with a key the server does not have."""
    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    now = int(time.time())
    head = b64({"typ": "JWT", "alg": "HS256"}) + "." + b64(
        {"sub": user_id, "username": name, "iat": now, "exp": now + 3600, "jti": str(uuid.uuid4())})
    signature = hmac.new(b"not-the-secret-" * 3, head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def check_topology(api):
    answer = api.call("GET", "/")
    body = status(answer, 200)
    expect(body.get("service") == "gateway-service" and body.get("status") == "ok", answer, "gateway health")
    if api.expect == "local":
        expect(body.get("downstream") == {"auth": "ok", "users": "ok"}, answer, "downstream probes")
        ok("topology", "GET / is the gateway's health, auth and users probed ok")
        error(api.call("GET", "/register"), 405, "Method not allowed")
        ok("topology", "GET /register (unprefixed) is forwarded to auth: 405")
    else:
        expect("downstream" not in body, answer, "no downstream probes without service URLs")
        ok("topology", "GET / is the gateway function's health, without downstream probes")
        error(api.call("GET", "/register"), 404, "Route not found")
        ok("topology", "GET /register (unprefixed) falls to $default, the gateway: 404")
    # A CORS preflight: the gateway's CORS layer answers 200 locally; API Gateway
    # answers it itself, 204, from the template's CorsConfiguration.
    preflight = api.call("OPTIONS", "/api/users", headers={
        "Origin": "http://browser.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    want = 200 if api.expect == "local" else 204
    expect(preflight.status == want, preflight, f"preflight answered {want}")
    methods = preflight.headers.get("access-control-allow-methods", "").upper()
    expect("POST" in methods and preflight.headers.get("access-control-allow-origin"), preflight,
           "the preflight allows the origin and POST")
    ok("topology", f"a CORS preflight of /api/users: {want} with the allowed origin and methods")


def list_page(api, token, limit, cursor=None):
    query = f"?limit={limit}" + (f"&cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
    answer = api.call("GET", "/api/users" + query, token=token)
    expect(answer.status == 200 and isinstance(answer.json, list), answer, "a JSON array")
    expect(len(answer.json) <= limit and (answer.json or not answer.headers.get("x-next-cursor")),
           answer, f"at most {limit} profiles, and at least one when a next page is announced")
    return answer.json, answer.headers.get("x-next-cursor")


def check_contract(api):
    g = "contract"
    alice, bob = fresh_name("a"), fresh_name("b")
    alice_id = register(api, alice)
    ok(g, "POST /api/register: 200 {user_id, username, message}")
    error(api.call("POST", "/api/register", {"username": alice.upper(), "email": f"x{alice}@example.com",
                                             "password": PASSWORD}), 409, "Username already exists")
    ok(g, "register the same username (other case): 409 Username already exists")
    error(api.call("POST", "/api/register", {"username": alice + "x", "email": f"{alice}@EXAMPLE.com",
                                             "password": PASSWORD}), 409, "Email already registered")
    ok(g, "register the same email (other case): 409 Email already registered")
    token = login(api, alice)["token"]
    ok(g, "POST /api/login: 200 {token, token_type: Bearer, expires_in, refresh_token}")
    answer = api.call("POST", "/api/validate", {"token": token})
    expect(status(answer, 200, {"valid", "user_id", "username"})
           == {"valid": True, "user_id": alice_id, "username": alice}, answer, "validate answer")
    ok(g, "POST /api/validate: 200 {valid: true, user_id, username}")

    profile = {"user_id": alice_id, "username": alice, "email": f"{alice}@example.com",
               "full_name": "Alice E2E", "bio": "Made by scripts/steps/e2e.py"}
    answer = api.call("POST", "/api/users", profile, token=token)
    expect(status(answer, 200, {"user_id", "message"}) == {
        "user_id": alice_id, "message": "Profile created successfully"}, answer, "create answer")
    ok(g, "POST /api/users: 200 Profile created successfully")
    error(api.call("POST", "/api/users", profile, token=token), 409, "User already exists")
    ok(g, "POST /api/users again: 409 User already exists")
    answer = api.call("GET", f"/api/users/{alice_id}", token=token)
    got = status(answer, 200, set(profile) | {"created_at"})
    expect({k: got[k] for k in profile} == profile and got["created_at"].endswith("Z"), answer, "profile")
    ok(g, "GET /api/users/{id}: the profile as created, with created_at")

    bob_id = register(api, bob)
    bob_token = login(api, bob)["token"]
    status(api.call("POST", "/api/users", {**profile, "user_id": bob_id, "username": bob,
                                           "email": f"{bob}@example.com"}, token=bob_token), 200)
    first, cursor = list_page(api, token, 1)
    expect(len(first) == 1 and cursor, first, "limit=1 with 2+ profiles: 1 profile and X-Next-Cursor")
    second, _ = list_page(api, token, 1, cursor)
    expect(len(second) == 1 and second[0]["user_id"] != first[0]["user_id"], second, "the next page")
    ok(g, "GET /api/users?limit=1: one profile and X-Next-Cursor; ?cursor= gives the next one")
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = list_page(api, token, 1000, cursor)
        seen += [p["user_id"] for p in page]
        pages += 1
        if not cursor or pages >= 100:
            break
    expect(not cursor and len(seen) == len(set(seen)) and {alice_id, bob_id} <= set(seen),
           seen[-5:], "walking every page: no cursor at the end, no repeats, both new profiles")
    ok(g, f"GET /api/users walked with X-Next-Cursor: {len(seen)} profiles in {pages} page(s)")

    answer = api.call("PUT", f"/api/users/{alice_id}", {"bio": "Updated by scripts/steps/e2e.py"}, token=token)
    expect(status(answer, 200, {"user_id", "message"})["message"] == "Profile updated successfully",
           answer, "update answer")
    got = status(api.call("GET", f"/api/users/{alice_id}", token=token), 200)
    expect(got["bio"] == "Updated by scripts/steps/e2e.py" and got["full_name"] == "Alice E2E", got, "update kept")
    ok(g, "PUT /api/users/{id}: 200, bio changed, full_name kept")
    error(api.call("PUT", f"/api/users/{alice_id}", {"bio": "x"}, token=bob_token),
          403, "You can only modify your own profile")
    ok(g, "PUT of another user's profile: 403")
    for who, who_id, who_token in ((alice, alice_id, token), (bob, bob_id, bob_token)):
        answer = api.call("DELETE", f"/api/users/{who_id}", token=who_token)
        expect(status(answer, 200, {"user_id", "message"}) == {
            "user_id": who_id, "message": "Profile deleted successfully"}, answer, "delete answer")
    ok(g, "DELETE /api/users/{id}: 200 Profile deleted successfully")
    error(api.call("GET", f"/api/users/{alice_id}", token=token), 404, "User not found")
    ok(g, "GET after DELETE: 404 User not found")

    error(api.call("GET", "/api/users"), 401, "Missing authorization header")
    ok(g, "no token: 401 Missing authorization header")
    error(api.call("GET", "/api/users", headers={"Authorization": "Basic YTpi"}),
          401, "Invalid authorization header format")
    ok(g, "another scheme: 401 Invalid authorization header format")
    for bad in ("not-a-token", forged_token(alice_id, alice)):
        error(api.call("GET", "/api/users", token=bad), 401, "Invalid or expired token")
        error(api.call("POST", "/api/validate", {"token": bad}), 401, "Invalid or malformed token")
    ok(g, "garbage and forged tokens: 401 at /api/users and /api/validate")
    error(api.call("POST", "/api/register", raw=b'{"username": '), 400, "Malformed JSON", prefix=True)
    error(api.call("POST", "/api/users", raw=b"{bad", token=token), 400, "Malformed JSON", prefix=True)
    ok(g, "malformed JSON: 400 Malformed JSON at auth and users")
    error(api.call("GET", "/api/nope"), 404, "Route not found")
    ok(g, "GET /api/nope: 404 Route not found (the gateway's)")
    for method, path in (("GET", "/api/register"), ("PATCH", "/api/users"),
                         ("POST", f"/api/users/{alice_id}")):
        error(api.call(method, path, token=token), 405, "Method not allowed")
    ok(g, "wrong method (GET /api/register, PATCH /api/users, POST /api/users/{id}): 405")


def check_refresh(api, reuse_interval):
    g, name = "refresh", fresh_name("r")
    register(api, name)
    first = login(api, name)
    answer = api.call("POST", "/api/refresh", {"refresh_token": first["refresh_token"]})
    status(answer, 200, {"token", "token_type", "expires_in", "refresh_token"})
    second = answer.json
    expect(second["refresh_token"] != first["refresh_token"] and second["token"] != first["token"]
           and second["token_type"] == "Bearer" and len(second["refresh_token"]) == 43, answer, "new tokens")
    status(api.call("POST", "/api/validate", {"token": second["token"]}), 200)
    ok(g, "POST /api/refresh: 200, a new access token (valid) and a new refresh token")
    answer = api.call("POST", "/api/refresh", {"refresh_token": first["refresh_token"]})
    status(answer, 200, {"token", "token_type", "expires_in", "refresh_token"})
    retried = answer.json
    expect(retried["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
           and sid_of(retried["token"]) == sid_of(second["token"]), answer,
           "another new refresh token, of the same session")
    status(api.call("POST", "/api/validate", {"token": retried["token"]}), 200)
    status(api.call("POST", "/api/validate", {"token": second["token"]}), 200)
    ok(g, f"the retired refresh token again within the reuse interval ({reuse_interval} s): 200, "
          "a new pair of the same session, which lives on")
    time.sleep(reuse_interval + 1)
    error(api.call("POST", "/api/refresh", {"refresh_token": first["refresh_token"]}),
          401, "Invalid or expired refresh token")
    ok(g, "reusing the retired refresh token after the interval: 401 Invalid or expired refresh token")
    for newer in (second, retried):
        error(api.call("POST", "/api/refresh", {"refresh_token": newer["refresh_token"]}),
              401, "Invalid or expired refresh token")
    ok(g, "after the reuse every newer refresh token of the session is refused too (family revoked)")
    other = login(api, name)
    status(api.call("POST", "/api/refresh", {"refresh_token": other["refresh_token"]}), 200)
    ok(g, "a refresh token of another login is unaffected")
    error(api.call("POST", "/api/refresh", {"refresh_token": "x" * 43}), 401, "Invalid or expired refresh token")
    ok(g, "an unknown refresh token: 401")


def check_logout(api):
    g, name = "logout", fresh_name("o")
    user_id = register(api, name)
    tokens = login(api, name)
    token = tokens["token"]
    list_page(api, token, 1)
    error(api.call("POST", "/api/logout"), 401, "Missing authorization header")
    ok(g, "POST /api/logout without a token: 401 Missing authorization header")
    answer = api.call("POST", "/api/logout", {"refresh_token": tokens["refresh_token"]}, token=token)
    expect(status(answer, 200, {"message"})["message"] == "Logged out successfully", answer, "logout answer")
    ok(g, "POST /api/logout: 200 Logged out successfully")
    error(api.call("POST", "/api/validate", {"token": token}), 401, "Token has been revoked")
    ok(g, "the logged-out token at /api/validate: 401 Token has been revoked")
    error(api.call("GET", "/api/users", token=token), 401, "Invalid or expired token")
    error(api.call("GET", f"/api/users/{user_id}", token=token), 401, "Invalid or expired token")
    ok(g, "the logged-out token at /api/users: 401 Invalid or expired token")
    error(api.call("POST", "/api/refresh", {"refresh_token": tokens["refresh_token"]}),
          401, "Invalid or expired refresh token")
    ok(g, "the refresh token given to logout is revoked")
    error(api.call("POST", "/api/logout", token=token), 401, "Token has been revoked")
    ok(g, "logging out again: 401 Token has been revoked")
    status(api.call("POST", "/api/validate", {"token": login(api, name)["token"]}), 200)
    ok(g, "a new login still works")


def claims(token):
    """The payload of a JWT, unverified."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def sid_of(token):
    return claims(token)["sid"]


def check_account(api):
    """Sessions listed and ended, the password changed, the account deleted: no token
    outlives the event that should end it, at auth and at users."""
    g, name = "account", fresh_name("a")
    new_password = "a-brand-new-passphrase-42"
    user_id = register(api, name)
    phone = login(api, name)
    laptop = login(api, name)
    bystander = fresh_name("b")
    register(api, bystander)
    other = login(api, bystander)["token"]

    def live(token, why):
        status(api.call("POST", "/api/validate", {"token": token}), 200)
        list_page(api, token, 1)
        ok(g, why)

    def refused(token, why):
        error(api.call("POST", "/api/validate", {"token": token}), 401, "Token has been revoked")
        error(api.call("GET", f"/api/users/{user_id}", token=token), 401, "Invalid or expired token")
        ok(g, why)

    answer = api.call("GET", "/api/sessions", token=phone["token"])
    sessions = status(answer, 200, {"sessions"})["sessions"]
    expect([s["id"] for s in sessions] == [sid_of(laptop["token"]), sid_of(phone["token"])]
           or {s["id"] for s in sessions} == {sid_of(laptop["token"]), sid_of(phone["token"])}, answer,
           "both logins listed")
    expect(all(set(s) == {"id", "created_at", "last_used_at", "ip_address", "user_agent", "current"}
               for s in sessions), answer, "session fields")
    expect([s["current"] for s in sessions if s["id"] == sid_of(phone["token"])] == [True]
           and sum(s["current"] for s in sessions) == 1, answer, "the current session marked")
    ok(g, "GET /api/sessions: both logins, the current one marked")
    for token, sid, why in ((other, sid_of(laptop["token"]), "another user's session"),
                            (phone["token"], str(uuid.uuid4()), "an unknown session")):
        error(api.call("DELETE", f"/api/sessions/{sid}", token=token), 404, "Session not found")
        ok(g, f"DELETE /api/sessions/{{id}} of {why}: 404 Session not found")
    live(laptop["token"], "the laptop's token still works")
    answer = api.call("DELETE", f"/api/sessions/{sid_of(laptop['token'])}", token=phone["token"])
    expect(status(answer, 200, {"message"})["message"] == "Session ended", answer, "end answer")
    refused(laptop["token"], "after DELETE /api/sessions/{id}: its token is refused at auth and users")
    error(api.call("POST", "/api/refresh", {"refresh_token": laptop["refresh_token"]}),
          401, "Invalid or expired refresh token")
    ok(g, "and its refresh token at /api/refresh")

    tablet = login(api, name)
    change = {"current_password": "wrong-password-1", "new_password": new_password}
    error(api.call("POST", "/api/password", change, token=phone["token"]), 401, "Current password is incorrect")
    ok(g, "POST /api/password with a wrong current password: 401")
    answer = api.call("POST", "/api/password", {"current_password": PASSWORD, "new_password": new_password},
                      token=phone["token"])
    body = status(answer, 200, {"message", "sessions_ended"})
    expect(body == {"message": "Password changed successfully", "sessions_ended": 1}, answer, "change answer")
    ok(g, "POST /api/password: 200, one other session ended")
    refused(tablet["token"], "the other session's token is refused at once")
    live(phone["token"], "the session that changed the password lives on")
    error(api.call("POST", "/api/login", {"username": name, "password": PASSWORD}),
          401, "Invalid username or password")
    ok(g, "the old password: 401")
    desktop = login(api, name, new_password)

    error(api.call("DELETE", "/api/account", {"password": PASSWORD}, token=phone["token"]),
          401, "Current password is incorrect")
    ok(g, "DELETE /api/account with a wrong password: 401")
    for attempt in ("DELETE /api/account", "asked again"):
        answer = api.call("DELETE", "/api/account", {"password": new_password}, token=phone["token"])
        expect(status(answer, 200, {"message"})["message"] == "Account deleted successfully", answer,
               "delete answer")
        ok(g, f"{attempt}: 200 Account deleted successfully")
    for token in (phone["token"], desktop["token"]):
        error(api.call("POST", "/api/validate", {"token": token}), 401, "Token has been revoked")
        error(api.call("GET", "/api/users", token=token), 401, "Invalid or expired token")
    ok(g, "every token of the deleted account is refused at auth and users")
    register(api, name)
    ok(g, "the username and email can be registered again")
    live(other, "another user is untouched")


def check_lockout(api, limit):
    g, name = "lockout", fresh_name("l")
    register(api, name)
    for _ in range(limit):
        error(api.call("POST", "/api/login", {"username": name, "password": "wrong-password"}),
              401, "Invalid username or password")
    ok(g, f"{limit} wrong passwords: 401 Invalid username or password each")
    for what, password in (("one more wrong password", "wrong-password"), ("the right password", PASSWORD)):
        answer = api.call("POST", "/api/login", {"username": name, "password": password})
        error(answer, 429, "Too many failed login attempts, try again later")
        retry = answer.headers.get("retry-after", "")
        expect(retry.isdigit() and 1 <= int(retry) <= 86400, answer, "Retry-After in seconds")
        ok(g, f"{what}: 429 with Retry-After: {retry}")


def check_register_limit(api, limit):
    """Registers until the answer is 429: at most `limit` more may pass (the groups before
    spent part of the address's budget), and the refusal has the error shape and a
    Retry-After. Spends the address's whole registration budget, so it runs last."""
    g = "register limit"
    for attempt in range(1, limit + 2):
        name = fresh_name("r")
        answer = api.call("POST", "/api/register",
                          {"username": name, "email": f"{name}@example.com", "password": PASSWORD})
        if answer.status == 429:
            break
        status(answer, 200, {"user_id", "username", "message"})
    else:
        raise CheckFailed(f"{limit + 1} registrations in a row passed, with REGISTER_MAX_PER_IP {limit}\n  {answer}")
    error(answer, 429, "Too many registrations from this address, try again later")
    retry = answer.headers.get("retry-after", "")
    expect(retry.isdigit() and 1 <= int(retry) <= 86400, answer, "Retry-After in seconds")
    ok(g, f"registration {attempt} of this group: 429 with Retry-After: {retry}")
    name = fresh_name("r")
    answer = api.call("POST", "/api/register",
                      {"username": name, "email": f"{name}@example.com", "password": PASSWORD})
    error(answer, 429, "Too many registrations from this address, try again later")
    ok(g, "the next one too")


def check_cors(api):
    """A browser on another origin may read every response header the API documents."""
    g = "cors"
    document = api.call("GET", "/openapi.json")
    status(document, 200)
    # CORS-safelisted response headers are readable without being exposed (Fetch).
    safelisted = {"cache-control", "content-language", "content-length", "content-type",
                  "expires", "last-modified", "pragma"}
    documented = sorted({name.lower()
                         for path in document.json["paths"].values()
                         for operation in path.values() if isinstance(operation, dict)
                         for response in operation.get("responses", {}).values()
                         for name in response.get("headers", {})} - safelisted)
    expect(documented, document, "openapi.json documents no response header")
    origin = "http://browser.example"
    for method, path in (("GET", "/api/users"), ("POST", "/api/login")):
        answer = api.call(method, path, body={} if method == "POST" else None,
                          headers={"Origin": origin})
        allowed = answer.headers.get("access-control-allow-origin")
        expect(allowed in ("*", origin), answer, f"no access-control-allow-origin for {origin}")
        exposed = {h.strip().lower()
                   for h in answer.headers.get("access-control-expose-headers", "").split(",")}
        missing = [h for h in documented if h not in exposed]
        expect(not missing, answer, f"documented headers not exposed to browsers: {missing}")
    ok(g, f"answers to {origin} expose {', '.join(documented)} (every header openapi.json documents)")


# --- Mailed links (issue 33): verification, password reset, email change -------------

LINK = re.compile(r"(\S*?/(verify-email|reset-password|confirm-email))#token=([A-Za-z0-9_-]{43})\b")
SUBJECTS = {
    "verify": "Confirm your email address",
    "reset": "Reset your password",
    "change": "Confirm your new email address",
    "change notice": "Your email address is being changed",
    "reset notice": "Your password was reset",
}
PAGES = {"verify": "verify-email", "reset": "reset-password", "change": "confirm-email"}


class Mailbox:
    """The mails the target sent, as LocalStack's `GET /_aws/ses` shows them: the local
    stack's (on the gateway's port) or moto's SES (under `local emulate`)."""

    def __init__(self, url):
        self.url = url.rstrip("/")

    def to(self, address):
        """The messages sent to `address`, oldest first (filtered here too: moto's
        `?to=` may be missing where LocalStack's `?email=` filters by sender)."""
        url = f"{self.url}?to={urllib.parse.quote(address, safe='@')}"
        code, _, text = net.request("GET", url, timeout=30)
        try:
            messages = json.loads(text)["messages"] if code == 200 else None
        except (ValueError, KeyError, TypeError):
            messages = None
        if not isinstance(messages, list):
            raise CheckFailed(f"the mailbox did not answer {{\"messages\": [...]}}\n  GET {url} -> {code} {text[:300]!r}")
        return [m for m in messages
                if address.lower() in (a.lower() for a in m.get("Destination", {}).get("ToAddresses", []))]

    def wait(self, address, kind, count=1, secs=10):
        """The `count`-th mail of `kind` (a key of SUBJECTS) to `address`, once it is there."""
        deadline = time.monotonic() + secs
        while True:
            found = [m for m in self.to(address) if m.get("Subject") == SUBJECTS[kind]]
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > deadline:
                raise CheckFailed(f"no mail {SUBJECTS[kind]!r} (#{count}) to {address} within {secs} s at "
                                  f"{self.url}; there: {[m.get('Subject') for m in self.to(address)]}")
            time.sleep(0.2)


def body_parts(mail):
    body = mail.get("Body") or {}
    return body.get("text_part") or "", body.get("html_part") or ""


def link_token(mail, kind):
    """The token of the mail's link to the app's page of `kind`: in the text body and the
    same link in the HTML body, and no other secret (the password) in either."""
    text, html = body_parts(mail)
    links = LINK.findall(text)
    expect(len(links) == 1 and links[0][1] == PAGES[kind], mail,
           f"one link to the app's /{PAGES[kind]}#token=... in the text body")
    expect(f"#token={links[0][2]}" in html, mail, "the same link in the HTML body")
    expect(PASSWORD not in text + html and NEW_PASSWORD not in text + html, mail, "no password in the mail")
    return links[0][2]


def no_link(mail):
    text, html = body_parts(mail)
    expect(text and html and not LINK.search(text + html), mail, "a notice with a text and an HTML body, no token")


def answered(answer, code, message):
    """The answer is `code` with exactly {"message": `message`}."""
    expect(status(answer, code, {"message"})["message"] == message, answer, f"expected message {message!r}")


def email_verified(api, name, want, password=PASSWORD):
    """A login's tokens, whose access token's `email_verified` claim is `want`."""
    tokens = login(api, name, password)
    expect(claims(tokens["token"]).get("email_verified") is want, claims(tokens["token"]),
           f"email_verified {want}")
    return tokens


def check_verify(api, mails):
    g, name = "verify", fresh_name("v")
    register(api, name)
    token = link_token(mails.wait(f"{name}@example.com", "verify"), "verify")
    ok(g, "POST /api/register mails a link to the app's /verify-email#token=… (text and HTML body)")
    email_verified(api, name, False)
    ok(g, "before: the access token's email_verified claim is false")
    answered(api.call("POST", "/api/email/verify", {"token": token}), 200, "Email verified")
    ok(g, "POST /api/email/verify with the link's token: 200 Email verified")
    email_verified(api, name, True)
    ok(g, "a login after: email_verified true")
    for what, used in (("the link used twice", token), ("an unknown token", "A" * 43)):
        error(api.call("POST", "/api/email/verify", {"token": used}), 400, "Invalid or expired token")
        ok(g, f"{what}: 400 Invalid or expired token")


FORGOT = "If an account has this email, a password reset link has been sent"


def check_reset(api, mails):
    g, name = "reset", fresh_name("p")
    register(api, name)
    address, stranger = f"{name}@example.com", f"{fresh_name('u')}@example.com"
    old = login(api, name)
    answers = [api.call("POST", "/api/password/forgot", {"email": email}) for email in (address, stranger)]
    for answer in answers:
        answered(answer, 202, FORGOT)
    expect(answers[0].text == answers[1].text, answers[1], f"the same body as for the known address: {answers[0]}")
    ok(g, "POST /api/password/forgot for a known and an unknown address: the same 202 answer")
    token = link_token(mails.wait(address, "reset"), "reset")
    expect(mails.to(stranger) == [], mails.to(stranger), "no mail to the unknown address")
    ok(g, "only the known address gets a mail: a link to the app's /reset-password#token=…")
    answered(api.call("POST", "/api/password/reset", {"token": token, "new_password": NEW_PASSWORD}),
             200, "Password reset successfully")
    ok(g, "POST /api/password/reset with the link's token: 200 Password reset successfully")
    error(api.call("POST", "/api/login", {"username": name, "password": PASSWORD}),
          401, "Invalid username or password")
    email_verified(api, name, True, NEW_PASSWORD)
    ok(g, "the old password: 401; the new one: 200, email_verified true (the link proved the address)")
    error(api.call("POST", "/api/validate", {"token": old["token"]}), 401, "Token has been revoked")
    error(api.call("POST", "/api/refresh", {"refresh_token": old["refresh_token"]}),
          401, "Invalid or expired refresh token")
    ok(g, "the session from before the reset ended: its access token and refresh token refused")
    error(api.call("POST", "/api/password/reset", {"token": token, "new_password": "yet-another-passphrase-7"}),
          400, "Invalid or expired token")
    ok(g, "the link used again: 400 Invalid or expired token")
    no_link(mails.wait(address, "reset notice"))
    ok(g, "a notice 'Your password was reset' reached the address")


def check_email_change(api, mails):
    g, name = "email change", fresh_name("c")
    register(api, name)
    old_address, new_address = f"{name}@example.com", f"{fresh_name('n')}@example.com"
    token = login(api, name)["token"]
    answered(api.call("POST", "/api/email", {"new_email": new_address, "password": PASSWORD}, token=token),
             202, "Confirmation email sent to the new address")
    ok(g, "POST /api/email (bearer, password): 202")
    link = link_token(mails.wait(new_address, "change"), "change")
    no_link(mails.wait(old_address, "change notice"))
    ok(g, "a link to the app's /confirm-email#token=… at the new address, a notice at the old one")
    answered(api.call("POST", "/api/email/confirm", {"token": link}), 200, "Email changed")
    ok(g, "POST /api/email/confirm with the link's token: 200 Email changed")
    email_verified(api, name, True)
    ok(g, "login still works, email_verified true (the new address is proven)")
    error(api.call("POST", "/api/email/confirm", {"token": link}), 400, "Invalid or expired token")
    ok(g, "the link used again: 400 Invalid or expired token")
    register(api, fresh_name("o"), old_address)
    ok(g, "the old address can be registered by someone else")
    error(api.call("POST", "/api/register", {"username": fresh_name("o"), "email": new_address,
                                             "password": PASSWORD}), 409, "Email already registered")
    ok(g, "the new address cannot: 409 Email already registered")

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--expect", choices=["local", "emulated"], default="local")
    parser.add_argument("--max-failures-per-user", type=int, default=5)
    parser.add_argument("--reuse-interval", type=int, default=10,
                        help="the API's REFRESH_REUSE_INTERVAL_SECS (RefreshReuseIntervalSecs), at least 1")
    parser.add_argument("--register-limit", type=int, default=None,
                        help="the target's REGISTER_MAX_PER_IP, when low enough to reach: "
                             "checks the 429 past it (spends the address's budget)")
    parser.add_argument("--mail-url", default=None,
                        help="where the target's mails are read, LocalStack's GET /_aws/ses: by default "
                             "<base-url>/_aws/ses (the local gateway's mailbox, or moto's SES through "
                             "the emulated API)")
    parser.add_argument("--no-mail", action="store_true",
                        help="skip the groups that read mails (verify, reset, email change)")
    args = parser.parse_args()
    if args.mail_url is None and not args.no_mail:
        args.mail_url = args.base_url.rstrip("/") + "/_aws/ses"
    api = Api(args.base_url, args.expect)
    started = time.monotonic()
    groups = [("topology", check_topology), ("contract", check_contract),
              ("refresh", lambda api: check_refresh(api, args.reuse_interval)), ("logout", check_logout), ("account", check_account), ("cors", check_cors),
              ("lockout", lambda api: check_lockout(api, args.max_failures_per_user))]
    if not args.no_mail:
        mails = Mailbox(args.mail_url)
        groups += [("verify", lambda api: check_verify(api, mails)),
                   ("reset", lambda api: check_reset(api, mails)),
                   ("email change", lambda api: check_email_change(api, mails))]
    if args.register_limit is not None:
        groups.append(("register limit", lambda api: check_register_limit(api, args.register_limit)))
    for name, group in groups:
        try:
            group(api)
        except CheckFailed as failure:
            print(f"FAIL {name}: {failure}", file=sys.stderr)
            return 1
        except (OSError, net.NoAnswer) as failure:
            print(f"FAIL {name}: cannot reach {args.base_url}: {failure}", file=sys.stderr)
            return 1
    ok("error shape", f"all {api.error_answers} error answers: JSON {{status, message}}, "
       "content-type application/json, a request id header")
    print(f"all checks passed against {args.base_url} ({args.expect}) "
          f"in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
