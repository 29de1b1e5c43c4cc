#!/usr/bin/env python3
"""A stranger verifies our tokens: PyJWT, knowing only the API's discovery URL, checks an
access token from /api/login with the key set the discovery names (jwks_uri), and
refuses the same token with its signature tampered with and an `alg: none` copy of it.
Standard library plus PyJWT[crypto] (scripts/requirements-tools.txt).

Usage: python -m scripts.steps.stranger --base-url URL [--audience AUD]   (from the repository's
root, with .tools/venv/bin/python)

URL is the API root (the local gateway, http://127.0.0.1:3002, or the deployed ApiUrl).
Registers one fresh user. Prints one `ok` line per check; exit 1 with the reason on the
first failure, among them a deployment that signs HS256 and so publishes no keys (the
local stack with JWT_SECRET set).
"""
import argparse
import base64
import json
import random
import sys
import time

import jwt

from scripts.lib import net

PASSWORD = "stranger-Password-1"


class Failed(Exception):
    pass


def call(url, body=None):
    """The JSON answer of a GET, or of a POST of `body`; Failed on an error status."""
    method = "GET" if body is None else "POST"
    status, answer = net.call_json(method, url, body, headers={"Content-Type": "application/json"})
    if status >= 400:
        raise Failed(f"{method} {url} -> {status} {answer!r:.300}")
    return answer


def refused(client, token, what, **checks):
    try:
        jwt.decode(token, client.get_signing_key_from_jwt(token).key, algorithms=["EdDSA"], **checks)
    except jwt.InvalidTokenError as error:
        print(f"ok  {what} refused: {type(error).__name__}: {error}")
        return
    raise Failed(f"PyJWT accepted {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--audience", default="serverless-auth-api")
    args = parser.parse_args()
    base = args.base_url.rstrip("/")

    name = f"stranger_{int(time.time())}_{random.randrange(16**6):06x}"
    user_id = call(f"{base}/api/register",
                   {"username": name, "email": f"{name}@example.com", "password": PASSWORD})["user_id"]
    token = call(f"{base}/api/login", {"username": name, "password": PASSWORD})["token"]
    print(f"ok  registered {name} ({user_id}) and logged in")

    discovery = call(f"{base}/.well-known/openid-configuration")
    issuer, jwks_uri = discovery.get("issuer"), discovery.get("jwks_uri")
    if not issuer or not jwks_uri:
        raise Failed(f"the discovery document lacks issuer or jwks_uri: {discovery}")
    print(f"ok  discovery: issuer {issuer!r}, jwks_uri {jwks_uri}")

    alg = jwt.get_unverified_header(token).get("alg")
    keys = call(jwks_uri).get("keys")
    if alg != "EdDSA" or not keys:
        raise Failed(f"the deployment at {base} does not publish keys a stranger can verify with: "
                     f"its tokens are {alg}, its key set {jwks_uri} has {len(keys or [])} keys "
                     "(HS256: JWT_SECRET is set, or the template still signs with a shared secret)")

    client = jwt.PyJWKClient(jwks_uri)
    checks = {"audience": args.audience, "issuer": issuer,
              "options": {"require": ["exp", "iat", "sub", "iss", "aud"]}}
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], **checks)
    if claims["sub"] != user_id:
        raise Failed(f"sub {claims['sub']!r} is not the registered user_id {user_id!r}")
    print(f"ok  PyJWT {jwt.__version__} verified the token (EdDSA, kid {key.key_id}): "
          f"sub is the user_id, iss {claims['iss']!r}, aud {claims['aud']!r}")

    head, payload, signature = token.split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    refused(client, f"{head}.{payload}.{flipped}", "the token with a tampered signature", **checks)
    none_head = dict(jwt.get_unverified_header(token), alg="none")
    encoded = base64.urlsafe_b64encode(json.dumps(none_head).encode()).rstrip(b"=").decode()
    refused(client, f"{encoded}.{payload}.", "the token as alg none", **checks)
    print(f"stranger: a token of {base} verified with PyJWT from the discovery URL alone")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Failed, net.NoAnswer, jwt.PyJWTError, OSError, KeyError, ValueError) as failure:
        kind = "" if isinstance(failure, Failed) else f"{type(failure).__name__}: "
        print(f"FAIL stranger: {kind}{failure}", file=sys.stderr)
        sys.exit(1)
