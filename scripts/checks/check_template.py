#!/usr/bin/env python3
"""Checks template.yaml against the API contract and the least-privilege rules that
cfn-lint and `sam validate` don't look at: every route of the spec goes to the right
function, each function's policy grants exactly the actions it needs on its own tables
and indexes (Query on the sessions-by-user index's ARN only, users' reads of the
security table limited to SESSION# and USER# keys for its batch read and to the
KEYS item, the registry of the public keys auth publishes, for its GetItem), the tables have exactly their
keys and indexes and keep their data safe, and the signing key never appears in the
template: auth alone gets JWT_SIGNING_KEY (EdDSA), from the stack's one generated
secret through a dynamic reference; no function gets JWT_SECRET (HS256), users gets no
key or secret at all, and no function may call Secrets Manager. Mail: auth alone sends
it, through SES (MAILER=ses) from the MailFrom parameter, an email address without a
default, with links into AppUrl (no default either) and EmailVerification
(optional|required, default optional); its one SES grant is ses:SendEmail on the
MailFrom identity's ARN, and no other function has any SES action or mail setting.

Usage: python -m scripts.checks.check_template [template.yaml]   (from the repository root,
with .tools/venv/bin/python)
Then it mutates the parsed template in memory and asserts that each mutation is
caught, so a checker that silently passes everything fails too.
"""
import copy
import json
import logging
import os
import re
import sys
from pathlib import Path

from scripts.lib import REPO
from scripts.lib import template as model
from scripts.lib.template import as_list, load, refs_in

LOG_LEVELS = {"off", "error", "warn", "info", "debug", "trace"}
# Lambda's instruction sets; the template defaults to arm64 (Graviton).
ARCHITECTURES = {"arm64", "x86_64"}

# The spec's routes (gateway table of seed-services.md) and who serves each in AWS.
ROUTES = {
    "POST /api/register": "AuthFunction",
    "POST /api/login": "AuthFunction",
    "POST /api/validate": "AuthFunction",
    "POST /api/refresh": "AuthFunction",
    "POST /api/logout": "AuthFunction",
    "GET /api/sessions": "AuthFunction",
    "DELETE /api/sessions/{id}": "AuthFunction",
    "POST /api/password": "AuthFunction",
    "DELETE /api/account": "AuthFunction",
    # Email verification, password reset and email change (issue 33's API).
    "POST /api/email/verify": "AuthFunction",
    "POST /api/email/verify/resend": "AuthFunction",
    "POST /api/password/forgot": "AuthFunction",
    "POST /api/password/reset": "AuthFunction",
    "POST /api/email": "AuthFunction",
    "POST /api/email/confirm": "AuthFunction",
    # The public keys and discovery, at the root where RFC 8615 puts them.
    "GET /.well-known/jwks.json": "AuthFunction",
    "GET /.well-known/openid-configuration": "AuthFunction",
    "GET /api/users": "UsersFunction",
    "POST /api/users": "UsersFunction",
    "GET /api/users/{id}": "UsersFunction",
    "PUT /api/users/{id}": "UsersFunction",
    "DELETE /api/users/{id}": "UsersFunction",
    "GET /": "GatewayFunction",
    "$default": "GatewayFunction",
}
# Any other method on a function's path goes to that function too, so it answers
# 405 itself instead of falling through to the gateway's default route.
ROUTES.update({
    f"ANY {key.split(' ', 1)[1]}": fid
    for key, fid in list(ROUTES.items())
    if key.startswith(("POST /api/", "GET /api/", "PUT /api/", "DELETE /api/", "GET /.well-known/"))
})

# logical id -> (binary, crate dir, {what it may touch: exactly the actions it has there}).
# What it may touch is a table ("SecurityTable") or one index of it
# ("SecurityTable/index/sessions-by-user"): a grant on the table does not cover its
# indexes, nor one on an index the table, so Query goes on the index's ARN alone.
ITEM_RW = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
SESSIONS_INDEX = "sessions-by-user"
FUNCTIONS = {
    "AuthFunction": ("auth", "functions/auth", {
        "AccountsTable": ITEM_RW,
        # Account deletion removes the profile inside its one TransactWriteItems; a
        # confirmed email change reads the profile and updates its email in its own.
        "ProfilesTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "SecurityTable": ITEM_RW | {"dynamodb:BatchGetItem"},
        f"SecurityTable/index/{SESSIONS_INDEX}": {"dynamodb:Query"},
    }),
    "UsersFunction": ("users", "functions/users", {
        # Profile writes are transactions: a Put or Update, or for an empty patch a
        # ConditionCheck that the profile exists.
        "ProfilesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                          "dynamodb:ConditionCheckItem", "dynamodb:Scan"},
        # The per-request check: SESSION#<sid> and USER#<sub> in one consistent read;
        # the same two items checked again in each profile write's transaction (still
        # live as read, account not deleted); and auth's key registry (KEYS) when a
        # token names a key id it does not know, a few times at most and then once
        # every few seconds per container.
        "SecurityTable": {"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem"},
    }),
    "GatewayFunction": ("gateway", "functions/gateway", {}),
}
# Grants that must be narrowed to some keys: (function, table) -> {action: key
# patterns, exactly}. A statement giving actions with different patterns is refused.
LEADING_KEYS = {("UsersFunction", "SecurityTable"): {
    "dynamodb:BatchGetItem": ["SESSION#*", "USER#*"],
    "dynamodb:ConditionCheckItem": ["SESSION#*", "USER#*"],
    "dynamodb:GetItem": ["KEYS"],
}}
# What a function must never be given, whatever FUNCTIONS says: (function, table) ->
# actions, None for every action. Users reads its two kinds of security items (a
# ConditionCheckItem reads an item inside a transaction and writes nothing) and
# writes only profiles.
WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                 "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate",
                 "dynamodb:PartiQLDelete", "dynamodb:DeleteTable", "dynamodb:UpdateTable"}
NEVER = {
    ("UsersFunction", "AccountsTable"): None,
    ("UsersFunction", "SecurityTable"): WRITE_ACTIONS,
}

# logical id -> (partition key, env var that names it)
PARTITION_KEYS = {"AccountsTable": "pk", "ProfilesTable": "user_id", "SecurityTable": "pk"}
TABLES = {lid: (key, model.TABLES[lid].env) for lid, key in PARTITION_KEYS.items()}
# logical id -> its GlobalSecondaryIndexes, exactly; a table not named here has none.
# With each, the AttributeDefinitions: the table's key and every index key, no other.
INDEXES = {
    "SecurityTable": [
        {
            "IndexName": SESSIONS_INDEX,
            "KeySchema": [
                {"AttributeName": "session_user", "KeyType": "HASH"},
                {"AttributeName": "session_started", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
    ],
}
INDEX_ATTRIBUTE_TYPES = {"session_user": "S", "session_started": "N"}

# The one function that signs tokens, and the secret resource its key comes from. The
# others verify with the public keys it publishes (the KEYS registry) and hold no key.
SIGNER = "AuthFunction"
SIGNING_SECRET = "JwtSigningKey"


def signing_key_reference():
    """The dynamic reference to SIGNING_SECRET: what the signer's JWT_SIGNING_KEY must be
    (a new dict at each call, for a template to hold as its own)."""
    return {"Fn::Sub": "{{resolve:secretsmanager:${" + SIGNING_SECRET + "}:SecretString}}"}


# The issuer and audience every function that signs or checks tokens gets, alike.
TOKEN_CLAIM_VARS = ("JWT_ISSUER", "JWT_AUDIENCE")
TOKEN_FUNCTIONS = ("AuthFunction", "UsersFunction")

# Mail: the one function that sends it, through SES, and the parameters it comes from.
MAILER = "AuthFunction"
MAIL_FROM_PARAMETER = "MailFrom"
# Auth's mail settings: variable -> the parameter it must be a Ref to ("MAILER" is "ses").
MAIL_PARAMETERS = {"MAIL_FROM": MAIL_FROM_PARAMETER, "APP_URL": "AppUrl", "EMAIL_VERIFICATION": "EmailVerification"}
# Variables of the mail settings: none in another function; SES_ENDPOINT in none at all
# (it points the SDK at moto under emulation; in AWS the SDK finds SES itself).
MAIL_VARS = ("MAILER", "MAIL_FROM", "APP_URL", "EMAIL_VERIFICATION", "SES_ENDPOINT", "FORGOT_PASSWORD_MIN_MS")
SES_ACTIONS = {"ses:SendEmail"}
# Parameter -> (values its AllowedPattern must accept, values it must refuse).
PATTERNS = {
    MAIL_FROM_PARAMETER: (["no-reply@example.com", "a.b+c@mail.example.co.uk"],
                          ["", "example.com", "no-reply@example", "a b@example.com", "a@b@example.com"]),
    "AppUrl": (["https://app.example.com", "http://localhost:8080", "https://example.com/app/"],
               ["", "app.example.com", "ftp://example.com", "https://example.com/?next=1",
                "https://example.com/#x", "https://exa mple.com"]),
}
EMAIL_VERIFICATION_VALUES = ["optional", "required"]


def identity_arn(parameter=MAIL_FROM_PARAMETER):
    """The ARN of the SES identity named by `parameter`, as the template's !Sub writes it."""
    return {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${" + parameter + "}"}


def mail_problems(t):
    """Problems of the mail parameters and of auth's mail settings."""
    errors = []
    params = t.get("Parameters", {})
    for name, (good, bad) in PATTERNS.items():
        p = params.get(name)
        if not p:
            errors.append(f"parameter {name} is missing")
            continue
        if p.get("Type") != "String":
            errors.append(f"parameter {name}: Type must be String")
        if "Default" in p:
            errors.append(f"parameter {name}: must have no Default (a deployer must give it; "
                          f"got {p['Default']!r})")
        pattern = p.get("AllowedPattern")
        try:
            wrong = [v for v in good if not re.fullmatch(pattern, v)] + [v for v in bad if re.fullmatch(pattern, v)]
        except (TypeError, re.error):
            wrong = ["(no usable pattern)"]
        if wrong:
            errors.append(f"parameter {name}: AllowedPattern {pattern!r} misjudges {wrong}")
    p = params.get("EmailVerification", {})
    if sorted(p.get("AllowedValues") or []) != EMAIL_VERIFICATION_VALUES or p.get("Default") != "optional":
        errors.append(f"parameter EmailVerification: AllowedValues must be {EMAIL_VERIFICATION_VALUES} with "
                      f"Default optional (the seed's flow), got {p.get('AllowedValues')!r}, {p.get('Default')!r}")
    for fid, res in t.get("Resources", {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        env = res.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if "SES_ENDPOINT" in env:
            errors.append(f"{fid}: SES_ENDPOINT must stay unset (emulation only; in AWS the SDK finds SES)")
        if fid != MAILER:
            given = sorted(set(MAIL_VARS) & set(env))
            if given:
                errors.append(f"{fid}: must not get {given} (only {MAILER} sends mail)")
            continue
        if env.get("MAILER") != "ses":
            errors.append(f"{fid}: MAILER must be ses, got {env.get('MAILER')!r}")
        for var, param in MAIL_PARAMETERS.items():
            if env.get(var) != {"Ref": param}:
                errors.append(f"{fid}: {var} must be !Ref {param}, got {env.get(var)!r}")
    glob = t.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    if set(MAIL_VARS) & set(glob):
        errors.append(f"Globals: must not set {sorted(set(MAIL_VARS) & set(glob))} (only {MAILER} sends mail)")
    return errors


def ses_grant_problems(fid, statements):
    """Problems of `fid`'s statements that give SES actions: the mailer needs exactly
    one, ses:SendEmail on the MailFrom identity; any other function none."""
    if fid != MAILER:
        return [f"{fid}: must not be given SES actions (only {MAILER} sends mail), got "
                f"{sorted(a for st in statements for a in as_list(st.get('Action', [])))}"] if statements else []
    want = identity_arn()
    if not statements:
        return [f"{fid}: lacks ses:SendEmail on the {MAIL_FROM_PARAMETER} identity"]
    if len(statements) > 1:
        return [f"{fid}: SES actions must be in one statement, ses:SendEmail on the {MAIL_FROM_PARAMETER} "
                f"identity; found {len(statements)}"]
    st = statements[0]
    errors = []
    actions = {str(a) for a in as_list(st.get("Action", []))}
    if actions != SES_ACTIONS:
        errors.append(f"{fid}: its SES statement must give exactly {sorted(SES_ACTIONS)}, gives {sorted(actions)}")
    if as_list(st.get("Resource", [])) != [want]:
        errors.append(f"{fid}: ses:SendEmail must be granted on the {MAIL_FROM_PARAMETER} identity alone, "
                      f"Resource exactly {want!r}; got {st.get('Resource')!r}")
    return errors


# Response headers a browser may read without them being exposed (Fetch standard).
SAFELISTED_RESPONSE_HEADERS = {"cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma"}

# aws-sdk-dynamodb call -> the IAM action that authorises it.
SDK_ACTIONS = {
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
    "scan": "dynamodb:Scan",
    "batch_get_item": "dynamodb:BatchGetItem",
    "batch_write_item": "dynamodb:BatchWriteItem",
    "describe_table": "dynamodb:DescribeTable",
}


def grant_target(resource):
    """What a policy Resource names: "<Table>" for !GetAtt <Table>.Arn (or !Sub
    "${<Table>.Arn}"), "<Table>/index/<name>" for !Sub "${<Table>.Arn}/index/<name>",
    "<Table>?<text>" for anything else naming a table, None when it names none."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        value = resource["Fn::GetAtt"]
        logical_id, attr = value if isinstance(value, list) else str(value).split(".", 1)
        return logical_id if attr == "Arn" and logical_id in TABLES else (f"{logical_id}?{attr}" if logical_id in TABLES else None)
    if isinstance(resource, dict) and "Fn::Sub" in resource and isinstance(resource["Fn::Sub"], str):
        m = re.fullmatch(r"\$\{(\w+)\.Arn\}(?:/index/([A-Za-z0-9_.-]+))?", resource["Fn::Sub"])
        if m and m.group(1) in TABLES:
            return m.group(1) + (f"/index/{m.group(2)}" if m.group(2) else "")
    named = refs_in(resource) & set(TABLES)
    return f"{sorted(named)[0]}?{json.dumps(resource)}" if named else None


def api_response_headers(path=REPO / "openapi.json"):
    """Every response header openapi.json defines, lower case, minus the safelisted ones."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("headers"), dict):
                found.update(name.lower() for name in node["headers"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    doc = json.loads(Path(path).read_text())
    walk(doc.get("paths", {}))
    walk(doc.get("components", {}))
    return found - SAFELISTED_RESPONSE_HEADERS


def check(t):
    """Returns a list of problems; empty means the template is right."""
    errors = []

    def need(cond, msg):
        if not cond:
            errors.append(msg)
        return cond

    resources = t.get("Resources", {})
    glob = t.get("Globals", {}).get("Function", {})

    # The API: one HTTP API on the $default stage, throttled, CORS from a parameter.
    apis = [k for k, r in resources.items() if r.get("Type") == "AWS::Serverless::HttpApi"]
    if not need(len(apis) == 1, f"expected exactly one AWS::Serverless::HttpApi, found {apis}"):
        return errors
    api_id = apis[0]
    api = resources[api_id].get("Properties", {})
    need(api.get("StageName", "$default") == "$default", f"{api_id}: StageName must be $default")
    throttle = api.get("DefaultRouteSettings", {})
    for key in ("ThrottlingBurstLimit", "ThrottlingRateLimit"):
        need(key in throttle, f"{api_id}: DefaultRouteSettings.{key} is not set (no throttling)")
    cors = api.get("CorsConfiguration", {})
    origins = cors.get("AllowOrigins")
    need(
        isinstance(origins, dict) and origins.get("Ref") in t.get("Parameters", {}),
        f"{api_id}: CorsConfiguration.AllowOrigins must come from a parameter, got {origins!r}",
    )
    # API Gateway replaces the functions' CORS headers, so it must expose the API's own.
    exposed = {str(h).lower() for h in as_list(cors.get("ExposeHeaders", []))}
    headers = api_response_headers()
    need(headers, "openapi.json defines no response headers (cannot check ExposeHeaders)")
    need(
        headers <= exposed,
        f"{api_id}: CorsConfiguration.ExposeHeaders misses {sorted(headers - exposed)}, response headers openapi.json defines",
    )

    # Routes: collected from every function's HttpApi events.
    routes = {}
    for fid, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for ename, event in (res.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties", {})
            need(props.get("ApiId") == {"Ref": api_id}, f"{fid}.{ename}: ApiId must be !Ref {api_id}")
            path = props.get("Path", "$default")
            method = str(props.get("Method", "ANY")).upper()
            key = "$default" if path == "$default" else f"{method} {path}"
            need(key not in routes, f"route {key} is mapped twice ({routes.get(key)} and {fid})")
            routes[key] = fid
    for key, fid in ROUTES.items():
        got = routes.get(key)
        need(got == fid, f"route {key} must go to {fid}, goes to {got or 'nothing'}")
    for key in sorted(set(routes) - set(ROUTES)):
        errors.append(f"route {key} ({routes[key]}) is not in the spec")

    # Functions: runtime, arch, cargo-lambda build of the right binary, env, policies.
    for fid, (binary, crate, grants) in FUNCTIONS.items():
        res = resources.get(fid)
        if not need(res and res.get("Type") == "AWS::Serverless::Function", f"{fid}: missing"):
            continue
        props = res.get("Properties", {})
        eff = lambda k: props.get(k, glob.get(k))  # noqa: E731
        need(eff("Runtime") == "provided.al2023", f"{fid}: Runtime must be provided.al2023")
        arch = eff("Architectures")
        if arch != ["arm64"]:
            # Or [!Ref <parameter>] defaulting to arm64 (x86_64 only for builds where
            # the aarch64 standard library is missing: scripts/emulator/sam_build.sh).
            ref = arch[0].get("Ref") if isinstance(arch, list) and len(arch) == 1 and isinstance(arch[0], dict) else None
            param = t.get("Parameters", {}).get(ref, {}) if isinstance(ref, str) else {}
            allowed = param.get("AllowedValues")
            need(
                param.get("Type") == "String" and param.get("Default") == "arm64"
                and isinstance(allowed, list) and "arm64" in allowed and set(allowed) <= ARCHITECTURES,
                f"{fid}: Architectures must be [arm64], or [!Ref <parameter>] of Type String, Default arm64, "
                f"AllowedValues within {sorted(ARCHITECTURES)}; got {arch!r}",
            )
        meta = res.get("Metadata", {})
        need(meta.get("BuildMethod") == "rust-cargolambda", f"{fid}: Metadata.BuildMethod must be rust-cargolambda")
        need(
            meta.get("BuildProperties", {}).get("Binary") == binary,
            f"{fid}: Metadata.BuildProperties.Binary must be {binary!r}",
        )
        need(props.get("CodeUri") == crate, f"{fid}: CodeUri must be {crate!r}, got {props.get('CodeUri')!r}")
        need(isinstance(props.get("MemorySize"), int), f"{fid}: MemorySize must be set per function")
        need(isinstance(props.get("Timeout"), int) and props["Timeout"] < 30, f"{fid}: Timeout must be set and under API Gateway's 30 s")
        log_group = props.get("LoggingConfig", {}).get("LogGroup", {})
        lg = resources.get(log_group.get("Ref", "") if isinstance(log_group, dict) else "", {})
        need(
            lg.get("Type") == "AWS::Logs::LogGroup" and "RetentionInDays" in lg.get("Properties", {}),
            f"{fid}: LoggingConfig.LogGroup must be a log group of this stack with RetentionInDays",
        )
        fmt = props.get("LoggingConfig", {}).get("LogFormat", glob.get("LoggingConfig", {}).get("LogFormat"))
        need(fmt == "JSON", f"{fid}: LoggingConfig.LogFormat must be JSON")

        env = dict(glob.get("Environment", {}).get("Variables", {}))
        env.update(props.get("Environment", {}).get("Variables", {}))
        for other, (_, var) in TABLES.items():
            if other in grants:
                need(env.get(var) == {"Ref": other}, f"{fid}: {var} must be !Ref {other}")
                need(env.get("STORE") == "dynamodb", f"{fid}: STORE must be dynamodb")
            else:
                need(var not in env, f"{fid}: must not get {var} (not its table)")
        # EdDSA: auth alone holds the signing key; HS256's shared secret goes nowhere.
        need("JWT_SECRET" not in env, f"{fid}: must not get JWT_SECRET (the template deploys EdDSA; "
             "HS256 would put one secret that signs in every function)")
        signing_key = env.get("JWT_SIGNING_KEY")
        if fid == SIGNER:
            want = signing_key_reference()
            need(
                signing_key == want,
                f"{fid}: JWT_SIGNING_KEY must be the dynamic reference {want!r} to the generated secret, got {signing_key!r}",
            )
        else:
            need(signing_key is None, f"{fid}: must not get JWT_SIGNING_KEY (only {SIGNER} signs)")
            need(
                "{{resolve:secretsmanager" not in json.dumps(env),
                f"{fid}: must not get any {{{{resolve:secretsmanager:...}}}} reference in its environment",
            )
        for var in TOKEN_CLAIM_VARS:
            if fid in TOKEN_FUNCTIONS:
                value = env.get(var)
                need(
                    isinstance(value, dict) and value.get("Ref") in t.get("Parameters", {}),
                    f"{fid}: {var} must be a Ref to a parameter, got {value!r}",
                )
            else:
                need(var not in env, f"{fid}: must not get {var} (it neither signs nor checks tokens)")

        policies = as_list(props.get("Policies", []))
        touched = refs_in(policies) & set(TABLES)
        tables_granted = {g.split("/", 1)[0] for g in grants}
        need(touched == tables_granted, f"{fid}: policies must name only {sorted(tables_granted) or 'no table'}, name {sorted(touched)}")
        given = {}  # what it may touch -> the actions its statements give there
        ses_statements = []
        for policy in policies:
            if not isinstance(policy, dict) or "Statement" not in policy:
                errors.append(f"{fid}: only inline policies are allowed, got {policy!r}")
                continue
            for st in as_list(policy["Statement"]):
                actions = {str(a) for a in as_list(st.get("Action", []))}
                for res_ in as_list(st.get("Resource", [])):
                    need(res_ != "*" and "*" not in json.dumps(res_), f"{fid}: wildcard Resource {res_!r}")
                need(st.get("Effect") == "Allow", f"{fid}: unexpected statement effect {st.get('Effect')!r}")
                need(not any(a.endswith("*") for a in actions), f"{fid}: wildcard action in {sorted(actions)}")
                need(
                    not any(a.lower().startswith("secretsmanager:") for a in actions),
                    f"{fid}: Secrets Manager actions {sorted(a for a in actions if a.lower().startswith('secretsmanager:'))} "
                    "(auth's key arrives as a dynamic reference; no function reads secrets)",
                )
                need("NotAction" not in st and "NotResource" not in st, f"{fid}: NotAction / NotResource are not allowed")
                if any(a.lower().startswith("ses:") for a in actions):
                    ses_statements.append(st)
                for res_ in as_list(st.get("Resource", [])):
                    target = grant_target(res_)
                    if target is None:
                        continue
                    given.setdefault(target, set()).update(actions)
                    tid = target.split("/", 1)[0].split("?", 1)[0]
                    extra = actions - grants.get(target, set())
                    need(not extra, f"{fid}: actions {sorted(extra)} on {target} are more than it needs")
                    never = NEVER.get((fid, tid), set())
                    refused = actions if never is None else actions & never
                    need(not refused, f"{fid}: must never be given {sorted(refused)} on {tid}")
                    limited = LEADING_KEYS.get((fid, tid))
                    if limited:
                        wanted = {tuple(sorted(limited[a])) for a in actions if a in limited}
                        if not need(
                            len(wanted) <= 1,
                            f"{fid}: one statement gives {sorted(a for a in actions if a in limited)} on {tid}, "
                            "actions limited to different keys: give each its own statement",
                        ):
                            continue
                        # An action without keys of its own is refused above; keys still apply.
                        patterns = list(wanted.pop()) if wanted else sorted({k for ks in limited.values() for k in ks})
                        condition = st.get("Condition", {})
                        keys = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
                        need(
                            sorted(as_list(keys or [])) == sorted(patterns) and set(condition) == {"ForAllValues:StringLike"},
                            f"{fid}: access to {tid} must be limited to keys {patterns} (ForAllValues:StringLike dynamodb:LeadingKeys) "
                            f"for {sorted(actions)}",
                        )
        for target, actions in grants.items():
            missing = actions - given.get(target, set())
            need(not missing, f"{fid}: lacks {sorted(missing)} on {target}")
        errors.extend(ses_grant_problems(fid, ses_statements))

    # Tables: on-demand, key and indexes as scripts/emulator/create_tables.py makes them, PITR, SSE, TTL.
    for tid, (key, _) in TABLES.items():
        res = resources.get(tid)
        if not need(res and res.get("Type") == "AWS::DynamoDB::Table", f"{tid}: missing"):
            continue
        p = res.get("Properties", {})
        need(p.get("BillingMode") == "PAY_PER_REQUEST", f"{tid}: BillingMode must be PAY_PER_REQUEST")
        need(p.get("KeySchema") == [{"AttributeName": key, "KeyType": "HASH"}], f"{tid}: key must be {key} (HASH)")
        indexes = INDEXES.get(tid, [])
        need(
            p.get("GlobalSecondaryIndexes", []) == indexes,
            f"{tid}: GlobalSecondaryIndexes must be exactly {indexes or 'none'}, got {p.get('GlobalSecondaryIndexes')!r}",
        )
        need("LocalSecondaryIndexes" not in p, f"{tid}: LocalSecondaryIndexes are not expected")
        attributes = {key: "S"}
        for index in indexes:
            for k in index["KeySchema"]:
                attributes[k["AttributeName"]] = INDEX_ATTRIBUTE_TYPES[k["AttributeName"]]
        defined = p.get("AttributeDefinitions") or []
        need(
            sorted((a.get("AttributeName"), a.get("AttributeType")) for a in defined) == sorted(attributes.items()),
            f"{tid}: AttributeDefinitions must be exactly {sorted(attributes.items())}, got {defined!r}",
        )
        need(
            p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True,
            f"{tid}: point-in-time recovery must be enabled",
        )
        need(p.get("SSESpecification", {}).get("SSEEnabled") is True, f"{tid}: SSESpecification.SSEEnabled must be true")
        ttl = p.get("TimeToLiveSpecification", {})
        need(
            ttl.get("Enabled") is True and ttl.get("AttributeName") == "expires_at",
            f"{tid}: TTL must be enabled on expires_at",
        )

    # The secret: auth's signing key material, generated by the stack, long enough,
    # never a parameter or literal.
    secrets = [k for k, r in resources.items() if r.get("Type") == "AWS::SecretsManager::Secret"]
    if need(secrets == [SIGNING_SECRET], f"expected one AWS::SecretsManager::Secret, {SIGNING_SECRET}, found {secrets}"):
        sp = resources[secrets[0]].get("Properties", {})
        gen = sp.get("GenerateSecretString", {})
        need("SecretString" not in sp, f"{secrets[0]}: SecretString must not be in the template")
        need(gen.get("PasswordLength", 32) >= 48, f"{secrets[0]}: GenerateSecretString.PasswordLength must be >= 48")
        need("GenerateStringKey" not in gen, f"{secrets[0]}: the secret must be a plain string, not JSON")
    for name in t.get("Parameters", {}):
        need("secret" not in name.lower(), f"parameter {name}: secrets must not be parameters")
    # RUST_LOG: a plain level from a fixed list, never a free-form filter.
    rust_log = t.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}).get("RUST_LOG")
    if need(isinstance(rust_log, dict) and rust_log.get("Ref") in t.get("Parameters", {}),
            "Globals RUST_LOG must be a Ref to a parameter"):
        param = t["Parameters"][rust_log["Ref"]]
        allowed = param.get("AllowedValues")
        need(isinstance(allowed, list) and allowed and set(allowed) <= LOG_LEVELS
             and param.get("Default") in allowed,
             f"parameter {rust_log['Ref']}: AllowedValues must be log levels from {sorted(LOG_LEVELS)}")
    # auth limits registrations per client address from a parameter with a floor of 1
    # (0 would stop the function at cold start: REGISTER_MAX_PER_IP is 1 to 1000000).
    auth_env = resources.get("AuthFunction", {}).get("Properties", {}).get("Environment", {}).get("Variables", {})
    limit = auth_env.get("REGISTER_MAX_PER_IP")
    if need(isinstance(limit, dict) and limit.get("Ref") in t.get("Parameters", {}),
            "AuthFunction: REGISTER_MAX_PER_IP must be a Ref to a parameter"):
        param = t["Parameters"][limit["Ref"]]
        need(param.get("Type") == "Number" and param.get("MinValue", 0) >= 1
             and param.get("MaxValue", 10**9) <= 1_000_000
             and 1 <= param.get("Default", 0) <= param.get("MaxValue", 10**9),
             f"parameter {limit['Ref']}: REGISTER_MAX_PER_IP must be a Number with MinValue >= 1, "
             "MaxValue <= 1000000 and a Default between them")
    # The gateway forwards nothing in AWS: it gets no service URLs.
    gateway_env = resources.get("GatewayFunction", {}).get("Properties", {}).get("Environment", {}).get("Variables", {})
    for var in ("AUTH_SERVICE_URL", "USER_SERVICE_URL"):
        need(var not in gateway_env, f"GatewayFunction: {var} must stay unset (API Gateway routes /api/*)")
    errors.extend(mail_problems(t))
    # Outputs.
    for name in ("ApiUrl", "AccountsTableName", "ProfilesTableName", "SecurityTableName"):
        need(name in t.get("Outputs", {}), f"output {name} is missing")
    return errors


def sdk_coverage(t):
    """IAM actions the DynamoDB store calls but no policy grants, when the store exists."""
    sources = sorted((REPO / "crates/stores/src").glob("dynamo*")) if (REPO / "crates/stores/src").is_dir() else []
    files = []
    for s in sources:
        files += sorted(s.rglob("*.rs")) if s.is_dir() else [s]
    if not files:
        print("check_template: SKIPPED the SDK-call coverage check: no crates/stores/src/dynamo* yet", file=sys.stderr)
        return []
    calls = set()
    for f in files:
        calls.update(re.findall(r"\.(\w+)\(\)", f.read_text()))
    needed = {SDK_ACTIONS[c] for c in calls if c in SDK_ACTIONS}
    if "transact_write_items" in calls:
        text = "".join(f.read_text() for f in files)
        for item, action in (("Put::builder", "PutItem"), ("Update::builder", "UpdateItem"), ("Delete::builder", "DeleteItem"), ("ConditionCheck::builder", "ConditionCheckItem")):
            if item in text:
                needed.add(f"dynamodb:{action}")
    granted = set()
    for fid in FUNCTIONS:
        for policy in as_list(t["Resources"].get(fid, {}).get("Properties", {}).get("Policies", [])):
            for st in as_list(policy.get("Statement", [])) if isinstance(policy, dict) else []:
                granted.update(str(a) for a in as_list(st.get("Action", [])))
    missing = needed - granted
    return [f"the DynamoDB store calls {sorted(missing)} but no function's policy grants it"] if missing else []


def translated_routes(t):
    """Routes as SAM actually emits them (the HTTP API's OpenAPI body), so a route
    SAM reads differently from what the template says (e.g. a misspelt $default) shows."""
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    t = copy.deepcopy(t)
    for res in t.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"  # as after `sam package`

    class NoManagedPolicies:
        def load(self):
            return {}

    try:
        out = transform(t, {}, NoManagedPolicies())
    except Exception as e:
        return [f"SAM could not translate the template: {e}"]
    errors = []
    apis = [r for r in out["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    if len(apis) != 1:
        return [f"expected one AWS::ApiGatewayV2::Api after translation, found {len(apis)}"]
    emitted = {}
    for path, methods in apis[0]["Properties"].get("Body", {}).get("paths", {}).items():
        for method, op in methods.items():
            uri = json.dumps(op.get("x-amazon-apigateway-integration", {}).get("uri"))
            fid = next((f for f in FUNCTIONS if "${" + f + ".Arn}" in uri), uri)
            method = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
            emitted["$default" if path == "$default" else f"{method} {path}"] = fid
    if emitted != ROUTES:
        for key in sorted(set(emitted) | set(ROUTES)):
            if emitted.get(key) != ROUTES.get(key):
                errors.append(f"translated API: {key} goes to {emitted.get(key)}, the spec wants {ROUTES.get(key)}")
    stages = [r["Properties"] for r in out["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    if [s.get("StageName") for s in stages] != ["$default"]:
        errors.append(f"translated API: stages are {[s.get('StageName') for s in stages]}, want only $default")
    return errors


def self_test(base):
    """Each mutation must make check() fail with a message naming the problem."""

    def mutated(fn):
        t = copy.deepcopy(base)
        fn(t)
        return check(t)

    r = lambda t: t["Resources"]  # noqa: E731

    def statement(t, fid, target, action=None):
        """The one statement of `fid` whose Resource is `target` (as grant_target names
        it) and, when `action` is given, whose actions include it."""
        found = [
            st
            for policy in as_list(r(t)[fid]["Properties"]["Policies"])
            for st in as_list(policy["Statement"])
            if [grant_target(res) for res in as_list(st.get("Resource", []))] == [target]
            and (action is None or action in as_list(st.get("Action", [])))
        ]
        assert len(found) == 1, f"self-test: {fid} has {len(found)} statements on {target} with {action or 'any action'}"
        return found[0]

    def env(t, fid):
        return r(t)[fid]["Properties"].setdefault("Environment", {}).setdefault("Variables", {})

    BATCH, GET = "dynamodb:BatchGetItem", "dynamodb:GetItem"

    def users_security_keys(t, action, keys):
        """Limits the users function's statement on SecurityTable with `action` to the
        leading keys `keys` (its ForAllValues:StringLike condition)."""
        condition = statement(t, "UsersFunction", "SecurityTable", action)["Condition"]
        condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] = keys

    def policy_statements(t, fid):
        """The statement list of `fid`'s first inline policy (the one each function has)."""
        return as_list(r(t)[fid]["Properties"]["Policies"])[0]["Statement"]

    def ses_statement(t):
        """Auth's one statement giving an SES action."""
        found = [st for st in policy_statements(t, "AuthFunction")
                 if any(str(a).startswith("ses:") for a in as_list(st.get("Action", [])))]
        assert len(found) == 1, f"self-test: AuthFunction has {len(found)} SES statements"
        return found[0]

    def arch_param(t):
        """The parameter Globals' Architectures refers to; one made up when it is a literal."""
        glob = t.setdefault("Globals", {}).setdefault("Function", {})
        arch = glob.get("Architectures")
        ref = arch[0].get("Ref") if isinstance(arch, list) and arch and isinstance(arch[0], dict) else None
        if not isinstance(ref, str) or ref not in t.get("Parameters", {}):
            ref = "SelfTestArchitecture"
            t.setdefault("Parameters", {})[ref] = {"Type": "String"}
            glob["Architectures"] = [{"Ref": ref}]
        return t["Parameters"][ref]

    cases = {
        "route to the wrong function": (
            lambda t: r(t)["AuthFunction"]["Properties"]["Events"].update(
                {"Stolen": {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "HttpApi"}, "Method": "DELETE", "Path": "/api/users/{id}"}}}
            ),
            "DELETE /api/users/{id}",
        ),
        "route missing": (lambda t: r(t)["UsersFunction"]["Properties"]["Events"].pop("UpdateUser"), "PUT /api/users/{id} must go to UsersFunction"),
        "auth given its accounts actions on the profiles table too": (
            lambda t: r(t)["AuthFunction"]["Properties"]["Policies"][0]["Statement"][0].update(
                {"Resource": [{"Fn::GetAtt": ["AccountsTable", "Arn"]}, {"Fn::Sub": "${ProfilesTable.Arn}"}]}
            ),
            "AuthFunction: actions ['dynamodb:ConditionCheckItem', 'dynamodb:PutItem'] on ProfilesTable are more than it needs",
        ),
        "users policy naming the accounts table": (
            lambda t: statement(t, "UsersFunction", "ProfilesTable").update(
                {"Resource": [{"Fn::GetAtt": ["ProfilesTable", "Arn"]}, {"Fn::GetAtt": ["AccountsTable", "Arn"]}]}
            ),
            "UsersFunction: must never be given",
        ),
        "users may write the security table": (
            lambda t: statement(t, "UsersFunction", "SecurityTable", BATCH)["Action"].append("dynamodb:PutItem"),
            "UsersFunction: must never be given ['dynamodb:PutItem'] on SecurityTable",
        ),
        "users given Query": (
            lambda t: statement(t, "UsersFunction", "SecurityTable", BATCH)["Action"].append("dynamodb:Query"),
            "UsersFunction: actions ['dynamodb:Query'] on SecurityTable are more than it needs",
        ),
        "users reading security items other than sessions and user markers": (
            lambda t: users_security_keys(t, BATCH, ["SESSION#*", "USER#*", "REFRESH#*"]),
            "UsersFunction: access to SecurityTable must be limited to keys",
        ),
        "users limited with ForAnyValue instead of ForAllValues": (
            lambda t: statement(t, "UsersFunction", "SecurityTable", BATCH).update(
                {"Condition": {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["SESSION#*", "USER#*"]}}}
            ),
            "UsersFunction: access to SecurityTable must be limited to keys",
        ),
        "users without its write guards": (
            lambda t: statement(t, "UsersFunction", "SecurityTable", "dynamodb:ConditionCheckItem").update(
                {"Action": ["dynamodb:BatchGetItem"]}
            ),
            "UsersFunction: lacks ['dynamodb:ConditionCheckItem'] on SecurityTable",
        ),
        "users checking security items other than sessions and user markers": (
            lambda t: users_security_keys(t, "dynamodb:ConditionCheckItem", ["SESSION#*", "USER#*", "KEY#*"]),
            "UsersFunction: access to SecurityTable must be limited to keys",
        ),
        "users without its batch read": (
            lambda t: statement(t, "UsersFunction", "SecurityTable", BATCH).update({"Action": ["dynamodb:GetItem"]}),
            "UsersFunction: lacks ['dynamodb:BatchGetItem'] on SecurityTable",
        ),
        "auth Query on the whole table instead of the index": (
            lambda t: statement(t, "AuthFunction", f"SecurityTable/index/{SESSIONS_INDEX}").update(
                {"Resource": {"Fn::GetAtt": ["SecurityTable", "Arn"]}}
            ),
            "AuthFunction: actions ['dynamodb:Query'] on SecurityTable are more than it needs",
        ),
        "auth Query on every index": (
            lambda t: statement(t, "AuthFunction", f"SecurityTable/index/{SESSIONS_INDEX}").update(
                {"Resource": {"Fn::Sub": "${SecurityTable.Arn}/index/*"}}
            ),
            "AuthFunction: wildcard Resource",
        ),
        "auth cannot list sessions": (
            lambda t: r(t)["AuthFunction"]["Properties"]["Policies"][0]["Statement"].remove(
                statement(t, "AuthFunction", f"SecurityTable/index/{SESSIONS_INDEX}")
            ),
            f"AuthFunction: lacks ['dynamodb:Query'] on SecurityTable/index/{SESSIONS_INDEX}",
        ),
        "auth may write whole profiles": (
            lambda t: statement(t, "AuthFunction", "ProfilesTable")["Action"].append("dynamodb:PutItem"),
            "AuthFunction: actions ['dynamodb:PutItem'] on ProfilesTable are more than it needs",
        ),
        "auth cannot move a profile's email": (
            lambda t: statement(t, "AuthFunction", "ProfilesTable")["Action"].remove("dynamodb:UpdateItem"),
            "AuthFunction: lacks ['dynamodb:UpdateItem'] on ProfilesTable",
        ),
        "password-forgot route missing": (
            lambda t: r(t)["AuthFunction"]["Properties"]["Events"].pop("ForgotPassword"),
            "POST /api/password/forgot must go to AuthFunction",
        ),
        "email-confirm route sent to users": (
            lambda t: r(t)["UsersFunction"]["Properties"]["Events"].update(
                {"ConfirmEmail": r(t)["AuthFunction"]["Properties"]["Events"].pop("ConfirmEmail")}
            ),
            "POST /api/email/confirm must go to AuthFunction, goes to UsersFunction",
        ),
        "other methods of /api/password/reset left to the gateway": (
            lambda t: r(t)["AuthFunction"]["Properties"]["Events"].pop("ResetPasswordOtherMethods"),
            "ANY /api/password/reset must go to AuthFunction",
        ),
        "resend route under another path": (
            lambda t: r(t)["AuthFunction"]["Properties"]["Events"]["ResendVerification"]["Properties"].update(
                {"Path": "/api/email/resend"}
            ),
            "POST /api/email/verify/resend must go to AuthFunction",
        ),
        "MailFrom with a placeholder default": (
            lambda t: t["Parameters"][MAIL_FROM_PARAMETER].update({"Default": "no-reply@example.com"}),
            "parameter MailFrom: must have no Default",
        ),
        "MailFrom taking a domain": (
            lambda t: t["Parameters"][MAIL_FROM_PARAMETER].update({"AllowedPattern": "^[!-~]+$"}),
            "parameter MailFrom: AllowedPattern '^[!-~]+$' misjudges ['example.com'",
        ),
        "MailFrom taking anything": (
            lambda t: t["Parameters"][MAIL_FROM_PARAMETER].pop("AllowedPattern"),
            "parameter MailFrom: AllowedPattern None misjudges",
        ),
        "AppUrl with a default": (
            lambda t: t["Parameters"]["AppUrl"].update({"Default": "http://localhost:8080"}),
            "parameter AppUrl: must have no Default",
        ),
        "AppUrl taking a query": (
            lambda t: t["Parameters"]["AppUrl"].update({"AllowedPattern": "^https?://[!-~]+$"}),
            "'https://example.com/?next=1'",
        ),
        "verification required by default": (
            lambda t: t["Parameters"]["EmailVerification"].update({"Default": "required"}),
            "parameter EmailVerification: AllowedValues must be",
        ),
        "verification free-form": (
            lambda t: t["Parameters"]["EmailVerification"].pop("AllowedValues"),
            "parameter EmailVerification: AllowedValues must be",
        ),
        "auth keeping mails in memory": (
            lambda t: env(t, "AuthFunction").update({"MAILER": "mailbox"}),
            "AuthFunction: MAILER must be ses",
        ),
        "auth sending from a literal address": (
            lambda t: env(t, "AuthFunction").update({"MAIL_FROM": "no-reply@example.com"}),
            "AuthFunction: MAIL_FROM must be !Ref MailFrom",
        ),
        "auth without APP_URL": (
            lambda t: env(t, "AuthFunction").pop("APP_URL"),
            "AuthFunction: APP_URL must be !Ref AppUrl",
        ),
        "auth without EMAIL_VERIFICATION": (
            lambda t: env(t, "AuthFunction").pop("EMAIL_VERIFICATION"),
            "AuthFunction: EMAIL_VERIFICATION must be !Ref EmailVerification",
        ),
        "SES endpoint in the template": (
            lambda t: env(t, "AuthFunction").update({"SES_ENDPOINT": "http://127.0.0.1:5000"}),
            "AuthFunction: SES_ENDPOINT must stay unset",
        ),
        "users given the sender": (
            lambda t: env(t, "UsersFunction").update({"MAIL_FROM": {"Ref": MAIL_FROM_PARAMETER}}),
            "UsersFunction: must not get ['MAIL_FROM']",
        ),
        "mail settings in Globals": (
            lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update({"MAILER": "ses"}),
            "Globals: must not set ['MAILER']",
        ),
        "auth without its SES grant": (
            lambda t: policy_statements(t, "AuthFunction").remove(ses_statement(t)),
            "AuthFunction: lacks ses:SendEmail on the MailFrom identity",
        ),
        "auth may send raw mail too": (
            lambda t: ses_statement(t)["Action"].append("ses:SendRawEmail"),
            "AuthFunction: its SES statement must give exactly ['ses:SendEmail']",
        ),
        "auth may manage identities": (
            lambda t: policy_statements(t, "AuthFunction").append(
                {"Effect": "Allow", "Action": ["ses:CreateEmailIdentity"], "Resource": identity_arn()}
            ),
            "AuthFunction: SES actions must be in one statement",
        ),
        "auth may do anything in SES": (
            lambda t: ses_statement(t).update({"Action": ["ses:*"]}),
            "AuthFunction: wildcard action in ['ses:*']",
        ),
        "auth may send from every identity": (
            lambda t: ses_statement(t).update({"Resource": {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"}}),
            "AuthFunction: wildcard Resource",
        ),
        "auth may send from the domain instead": (
            lambda t: ses_statement(t).update({"Resource": {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/example.com"}}),
            "AuthFunction: ses:SendEmail must be granted on the MailFrom identity alone",
        ),
        "auth's SES grant on a literal ARN": (
            lambda t: ses_statement(t).update({"Resource": "arn:aws:ses:us-east-1:123456789012:identity/no-reply@example.com"}),
            "AuthFunction: ses:SendEmail must be granted on the MailFrom identity alone",
        ),
        "auth's SES grant on a second identity too": (
            lambda t: ses_statement(t).update({"Resource": [identity_arn(), identity_arn("AlarmEmail")]}),
            "AuthFunction: ses:SendEmail must be granted on the MailFrom identity alone",
        ),
        "users may send mail": (
            lambda t: policy_statements(t, "UsersFunction").append(copy.deepcopy(ses_statement(t))),
            "UsersFunction: must not be given SES actions",
        ),
        "gateway may send mail": (
            lambda t: r(t)["GatewayFunction"]["Properties"].update(
                {"Policies": [{"Version": "2012-10-17", "Statement": [copy.deepcopy(ses_statement(t))]}]}
            ),
            "GatewayFunction: must not be given SES actions",
        ),
        "sessions route missing": (
            lambda t: r(t)["AuthFunction"]["Properties"]["Events"].pop("EndSession"),
            "DELETE /api/sessions/{id} must go to AuthFunction",
        ),
        "key set under /api only": (
            lambda t: r(t)["AuthFunction"]["Properties"]["Events"]["Jwks"]["Properties"].update({"Path": "/api/.well-known/jwks.json"}),
            "GET /.well-known/jwks.json must go to AuthFunction",
        ),
        "GSI missing": (
            lambda t: r(t)["SecurityTable"]["Properties"].pop("GlobalSecondaryIndexes"),
            "SecurityTable: GlobalSecondaryIndexes must be exactly",
        ),
        "GSI projecting keys only": (
            lambda t: r(t)["SecurityTable"]["Properties"]["GlobalSecondaryIndexes"][0].update(
                {"Projection": {"ProjectionType": "KEYS_ONLY"}}
            ),
            "SecurityTable: GlobalSecondaryIndexes must be exactly",
        ),
        "GSI sorted by a string": (
            lambda t: next(
                a for a in r(t)["SecurityTable"]["Properties"]["AttributeDefinitions"] if a["AttributeName"] == "session_started"
            ).update({"AttributeType": "S"}),
            "SecurityTable: AttributeDefinitions must be exactly",
        ),
        "an index on the accounts table": (
            lambda t: r(t)["AccountsTable"]["Properties"].update(
                {"GlobalSecondaryIndexes": copy.deepcopy(r(t)["SecurityTable"]["Properties"]["GlobalSecondaryIndexes"])}
            ),
            "AccountsTable: GlobalSecondaryIndexes must be exactly none",
        ),
        "users policy with a wildcard action": (
            lambda t: r(t)["UsersFunction"]["Properties"]["Policies"][0]["Statement"][0].update({"Action": "dynamodb:*"}),
            "UsersFunction: actions",
        ),
        "users may read any security item": (
            lambda t: r(t)["UsersFunction"]["Properties"]["Policies"][0]["Statement"][1].pop("Condition"),
            "UsersFunction: access to SecurityTable must be limited",
        ),
        "managed policy template": (
            lambda t: r(t)["GatewayFunction"]["Properties"].update({"Policies": [{"DynamoDBCrudPolicy": {"TableName": {"Ref": "AccountsTable"}}}]}),
            "GatewayFunction: policies must name only",
        ),
        "registration limit unset": (
            lambda t: r(t)["AuthFunction"]["Properties"]["Environment"]["Variables"].pop("REGISTER_MAX_PER_IP"),
            "AuthFunction: REGISTER_MAX_PER_IP",
        ),
        "registration limit may be 0": (
            lambda t: t["Parameters"]["RegisterMaxPerIp"].update({"MinValue": 0}),
            "REGISTER_MAX_PER_IP must be a Number with MinValue >= 1",
        ),
        "PITR off": (
            lambda t: r(t)["ProfilesTable"]["Properties"]["PointInTimeRecoverySpecification"].update({"PointInTimeRecoveryEnabled": False}),
            "ProfilesTable: point-in-time recovery",
        ),
        "SSE missing": (lambda t: r(t)["AccountsTable"]["Properties"].pop("SSESpecification"), "AccountsTable: SSESpecification"),
        "TTL on another attribute": (
            lambda t: r(t)["AccountsTable"]["Properties"]["TimeToLiveSpecification"].update({"AttributeName": "ttl"}),
            "AccountsTable: TTL",
        ),
        "literal JWT secret": (
            lambda t: env(t, "UsersFunction").update({"JWT_SECRET": "x" * 40}),
            "UsersFunction: must not get JWT_SECRET",
        ),
        "JWT_SECRET added to auth": (
            lambda t: env(t, "AuthFunction").update({"JWT_SECRET": signing_key_reference()}),
            "AuthFunction: must not get JWT_SECRET",
        ),
        "users given JWT_SIGNING_KEY": (
            lambda t: env(t, "UsersFunction").update({"JWT_SIGNING_KEY": signing_key_reference()}),
            "UsersFunction: must not get JWT_SIGNING_KEY",
        ),
        "users given the secret under another name": (
            lambda t: env(t, "UsersFunction").update({"VERIFY_KEY": signing_key_reference()}),
            "UsersFunction: must not get any {{resolve:secretsmanager:...}} reference",
        ),
        "auth signing with a literal key": (
            lambda t: env(t, "AuthFunction").update({"JWT_SIGNING_KEY": "k" * 64}),
            "AuthFunction: JWT_SIGNING_KEY must be the dynamic reference",
        ),
        "auth without its signing key": (
            lambda t: env(t, "AuthFunction").pop("JWT_SIGNING_KEY"),
            "AuthFunction: JWT_SIGNING_KEY must be the dynamic reference",
        ),
        "users given GetSecretValue": (
            lambda t: r(t)["UsersFunction"]["Properties"]["Policies"][0]["Statement"].append(
                {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": {"Ref": "JwtSigningKey"}}
            ),
            "UsersFunction: Secrets Manager actions ['secretsmanager:GetSecretValue']",
        ),
        "users with a literal audience": (
            lambda t: env(t, "UsersFunction").update({"JWT_AUDIENCE": "someone-else"}),
            "UsersFunction: JWT_AUDIENCE must be a Ref to a parameter",
        ),
        "users' KEYS GetItem widened to *": (
            lambda t: users_security_keys(t, GET, ["*"]),
            "UsersFunction: access to SecurityTable must be limited to keys ['KEYS']",
        ),
        "users' GetItem without its condition": (
            lambda t: statement(t, "UsersFunction", "SecurityTable", GET).pop("Condition"),
            "UsersFunction: access to SecurityTable must be limited to keys ['KEYS']",
        ),
        "users' GetItem limited to sessions and markers": (
            lambda t: users_security_keys(t, GET, ["SESSION#*", "USER#*"]),
            "UsersFunction: access to SecurityTable must be limited to keys ['KEYS']",
        ),
        "users' GetItem given every KEY# item too": (
            lambda t: users_security_keys(t, GET, ["KEYS", "KEY#*"]),
            "UsersFunction: access to SecurityTable must be limited to keys ['KEYS']",
        ),
        "users' batch read given KEY# too": (
            lambda t: users_security_keys(t, BATCH, ["SESSION#*", "USER#*", "KEY#*"]),
            "UsersFunction: access to SecurityTable must be limited to keys ['SESSION#*', 'USER#*']",
        ),
        "users' GetItem merged into its batch read": (
            lambda t: statement(t, "UsersFunction", "SecurityTable", BATCH)["Action"].append(GET),
            "actions limited to different keys",
        ),
        "users without its public-key read": (
            lambda t: r(t)["UsersFunction"]["Properties"]["Policies"][0]["Statement"].remove(
                statement(t, "UsersFunction", "SecurityTable", GET)
            ),
            "UsersFunction: lacks ['dynamodb:GetItem'] on SecurityTable",
        ),
        "auth cannot update the security table (KEYS registry, sessions)": (
            lambda t: statement(t, "AuthFunction", "SecurityTable")["Action"].remove("dynamodb:UpdateItem"),
            "AuthFunction: lacks ['dynamodb:UpdateItem'] on SecurityTable",
        ),
        "secret renamed": (
            lambda t: r(t).update({"OtherSecret": r(t).pop("JwtSigningKey")}),
            "expected one AWS::SecretsManager::Secret, JwtSigningKey",
        ),
        "short signing key": (
            lambda t: r(t)["JwtSigningKey"]["Properties"]["GenerateSecretString"].update({"PasswordLength": 32}),
            "JwtSigningKey: GenerateSecretString.PasswordLength must be >= 48",
        ),
        "signing key in the template": (
            lambda t: r(t)["JwtSigningKey"]["Properties"].update({"SecretString": "k" * 64}),
            "JwtSigningKey: SecretString must not be in the template",
        ),
        "wrong binary": (lambda t: r(t)["GatewayFunction"]["Metadata"]["BuildProperties"].update({"Binary": "local"}), "GatewayFunction: Metadata.BuildProperties.Binary"),
        "an API header not exposed": (
            lambda t: r(t)["HttpApi"]["Properties"]["CorsConfiguration"].update(
                {"ExposeHeaders": [h for h in r(t)["HttpApi"]["Properties"]["CorsConfiguration"]["ExposeHeaders"] if h.lower() != "x-next-cursor"]}
            ),
            "ExposeHeaders misses ['x-next-cursor']",
        ),
        "no exposed headers": (
            lambda t: r(t)["HttpApi"]["Properties"]["CorsConfiguration"].pop("ExposeHeaders"),
            "ExposeHeaders misses ['retry-after', 'x-next-cursor', 'x-request-id']",
        ),
        "no throttling": (lambda t: r(t)["HttpApi"]["Properties"].pop("DefaultRouteSettings"), "ThrottlingBurstLimit"),
        "output missing": (lambda t: t["Outputs"].pop("ApiUrl"), "output ApiUrl"),
        "free-form log filter": (lambda t: t["Parameters"]["RustLog"].pop("AllowedValues"), "parameter RustLog: AllowedValues"),
        "log level outside the list": (
            lambda t: t["Parameters"]["RustLog"].update({"AllowedValues": ["info", "lambda_runtime=trace"]}),
            "parameter RustLog: AllowedValues",
        ),
        "functions on x86_64 by default": (
            lambda t: arch_param(t).update({"Default": "x86_64", "AllowedValues": ["arm64", "x86_64"]}),
            "AuthFunction: Architectures must be [arm64]",
        ),
        "an architecture Lambda does not have": (
            lambda t: arch_param(t).update({"Default": "arm64", "AllowedValues": ["arm64", "x86"]}),
            "UsersFunction: Architectures must be [arm64]",
        ),
        "one function on x86_64": (
            lambda t: r(t)["GatewayFunction"]["Properties"].update({"Architectures": ["x86_64"]}),
            "GatewayFunction: Architectures must be [arm64]",
        ),
        "gateway given a service URL": (
            lambda t: r(t)["GatewayFunction"]["Properties"].setdefault("Environment", {}).setdefault("Variables", {}).update(
                {"AUTH_SERVICE_URL": "http://localhost:3000"}
            ),
            "GatewayFunction: AUTH_SERVICE_URL",
        ),
    }
    translated = {
        "default route misspelt": (
            lambda t: r(t)["GatewayFunction"]["Properties"]["Events"]["Default"]["Properties"].update({"Path": "/$default"}),
            "translated API: $default goes to None",
        ),
    }
    failures = []
    for name, (mutate, expect) in list(cases.items()) + list(translated.items()):
        try:
            if name in translated:
                t = copy.deepcopy(base)
                mutate(t)
                errs = translated_routes(t)
            else:
                errs = mutated(mutate)
        except Exception as e:  # a crash is not a clean rejection
            failures.append(f"self-test '{name}': checker crashed: {e!r}")
            continue
        if not any(expect in e for e in errs):
            failures.append(f"self-test '{name}': expected a problem containing {expect!r}, got {errs}")
    return failures, len(cases) + len(translated)


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "template.yaml"
    template = load(path)
    errors = check(template) + translated_routes(template) + sdk_coverage(template)
    for fid, (binary, crate, _) in FUNCTIONS.items():
        manifest = REPO / crate / "Cargo.toml"
        if not manifest.is_file():
            errors.append(f"{fid}: {manifest} does not exist (CodeUri)")
    failures, n = self_test(template)
    for e in errors:
        print(f"check_template: FAIL: {e}", file=sys.stderr)
    for f in failures:
        print(f"check_template: SELF-TEST FAIL: {f}", file=sys.stderr)
    if errors or failures:
        print(f"check_template: {len(errors)} problem(s) in {path.name}, {len(failures)} self-test failure(s)", file=sys.stderr)
        sys.exit(1)
    print(f"check_template: {path.name} OK ({len(ROUTES)} routes, {len(FUNCTIONS)} functions, {len(TABLES)} tables); {n} mutations all caught")


if __name__ == "__main__":
    main()
