#!/usr/bin/env python3
"""Self-test of the IAM emulation (scripts/emulator/iam.py + scripts/emulator/moto_serial.py --iam).

Starts moto_serial.py --iam on a free port, creates the tables (create_tables.py), gives
each function its template policies (iam.py) and then calls DynamoDB with each
function's keys, the way the functions' code does, checking what is allowed and what is
denied, a Query on the sessions-by-user index included (granted on the index's ARN,
refused on the table's), and the key registry auth publishes (KEYS) that users reads.
SES too: with MailFrom, other addresses and a domain verified in moto
(ses_identities.py), auth's keys may SendEmail (SES v2, as crates/mail sends) from the
MailFrom identity and are refused from any other and for any other SES action; users'
and gateway's are refused. Then shows planted faults failing (the template without one
Action of AuthFunction; its Query granted on the table instead of the index; its
SendEmail granted on the domain of MailFrom instead of the address), which identity a
From address is authorised as (the address when verified, else its domain), the
known gap (conditions), and what moto does without --iam.
Prints every check; exits 1 if any fails.
Usage: python -m scripts.steps.test_iam   (from the repository's root)
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from scripts.lib import REPO, net
from scripts.lib import template as model

TEMPLATE = model.TEMPLATE
# Each table under the name of its option.
TABLES = {name.option: name.option for name in model.TABLES.values()}
REGION = "us-east-1"
# SES identities verified in moto: MailFrom, what the template's grant names; another
# address of its domain, verified too, so that a refusal is IAM's and not SES's; and a
# domain verified as a domain only.
MAIL_FROM = "no-reply@example.com"
OTHER_SENDER = "other@example.com"
MAIL_DOMAIN = "example.org"
ENV = {**os.environ, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
       "AWS_ACCESS_KEY_ID": "setup", "AWS_SECRET_ACCESS_KEY": "setup"}
failures = []


@contextmanager
def moto(*options):
    """A moto_serial.py on a free port, stopped on exit; yields its URL."""
    port = net.free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts/emulator/moto_serial.py"), "-p", str(port),
                             *options], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            net.wait_until(lambda: net.answering(f"{url}/moto-api/data.json"), proc, "moto", 10)
        except net.NotUp:
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"test_iam: moto exited:\n{log.read().decode()}") from None
            raise SystemExit("test_iam: moto did not start") from None
        yield url
    finally:
        proc.terminate()
        proc.wait()


def run(module: str, *args: str) -> str:
    """The output of `python -m scripts.emulator.<module> args`."""
    out = subprocess.run([sys.executable, "-m", f"scripts.emulator.{module}", *args], env=ENV,
                         cwd=REPO, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"test_iam: {module}.py failed:\n{out.stderr}")
    return out.stdout


def deploy(url: str, template: Path = TEMPLATE, mail_from: str = MAIL_FROM) -> dict:
    """Tables from the real template, the SES identities, users from `template` (its
    MailFrom `mail_from`); each function's keys."""
    tables = [f"--{option}={name}" for option, name in TABLES.items()]
    run("create_tables", f"--endpoint={url}", *tables)
    run("ses_identities", f"--endpoint={url}", MAIL_FROM, OTHER_SENDER, MAIL_DOMAIN)
    return json.loads(run("iam", f"--endpoint={url}", f"--template={template}", *tables,
                          "--parameter-overrides", f"MailFrom={mail_from}"))


def clients(url: str, keys: dict, service: str = "dynamodb") -> dict:
    """A `service` client per function, with its keys."""
    return {function: client(url, k["AWS_ACCESS_KEY_ID"], k["AWS_SECRET_ACCESS_KEY"], service)
            for function, k in keys.items()}


def client(url: str, key_id: str, secret: str, service: str = "dynamodb"):
    return boto3.client(service, endpoint_url=url, region_name=REGION,
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


def check(label: str, call, expect: str, denial=r"AccessDeniedException") -> None:
    """Run `call`; `expect` is "allowed" or "denied" (an error whose code matches `denial`)."""
    try:
        call()
        got, detail = "allowed", ""
    except ClientError as e:
        error, status = e.response["Error"], e.response["ResponseMetadata"]["HTTPStatusCode"]
        text = f"{error.get('Code')}: {error.get('Message', '')}"
        got = "denied" if re.search(denial, text) else "error"
        detail = f" (HTTP {status} {error.get('Code')})" if got == expect else f"\n     {status} {text}"
    except AssertionError as e:  # allowed, but not the answer it should be
        got, detail = "error", f"\n     {e}"
    ok = got == expect
    if not ok:
        failures.append(label)
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {got}{detail}")


def s(value: str) -> dict:
    return {"S": value}


def register(table: str, name: str, user_id: str = "") -> dict:
    """The registration transaction of crates/stores/src/dynamodb/accounts.rs."""
    user_id = user_id or str(uuid.uuid4())
    record = {"user_id": s(user_id), "username": s(name), "email": s(f"{name}@example.com"),
              "password_hash": s("$2b$04$x"), "created_at": s("2026-01-01T00:00:00Z")}
    put = lambda pk, item: {"Put": {"TableName": table, "Item": {**item, "pk": s(pk)},
                                    "ConditionExpression": "attribute_not_exists(pk)"}}
    return {"TransactItems": [put(f"USER#{user_id}", record), put(f"USERNAME#{name}", record),
                              put(f"EMAIL#{name}@example.com", {"user_id": s(user_id)})]}


def n(value: int) -> dict:
    return {"N": str(value)}


def refresh_item(token: str) -> dict:
    return {"pk": s(f"REFRESH#{token}"), "family": s("s1"), "user_id": s("u1"),
            "username": s("alice"), "gen": n(0), "expires_at": n(4102444800), "used": {"BOOL": False}}


def session_item(sid: str, user: str, started: int) -> dict:
    """A live SESSION# item (TABLES.md): its session_user and session_started put it
    in the sessions-by-user index."""
    return {"pk": s(f"SESSION#{sid}"), "user_id": s(user), "username": s("alice"),
            "started": n(started), "last_used": n(started), "gen": n(0),
            "expires_at": n(4102444800), "session_user": s(user), "session_started": n(started)}


def rotate(table: str, old: str, new: str) -> dict:
    """A refresh-token rotation as one transaction: the old token retired, its live
    session checked and its last use recorded, the new token put."""
    return {"TransactItems": [
        {"Update": {"TableName": table, "Key": {"pk": s(f"REFRESH#{old}")},
                    "UpdateExpression": "SET #used = :true", "ConditionExpression": "#used = :false",
                    "ExpressionAttributeNames": {"#used": "used"},
                    "ExpressionAttributeValues": {":true": {"BOOL": True}, ":false": {"BOOL": False}}}},
        {"Update": {"TableName": table, "Key": {"pk": s("SESSION#s1")},
                    "UpdateExpression": "SET last_used = :now",
                    "ConditionExpression": "attribute_exists(session_user)",
                    "ExpressionAttributeValues": {":now": n(1767225600)}}},
        {"Put": {"TableName": table, "Item": refresh_item(new),
                 "ConditionExpression": "attribute_not_exists(pk)"}},
    ]}


def delete_account(accounts: str, profiles: str, security: str, name: str) -> dict:
    """An account deletion as one transaction: the account and its two claims, the
    profile, and the USER# marker that refuses every token of the user."""
    delete = lambda table, k: {"Delete": {"TableName": table, "Key": k}}
    return {"TransactItems": [
        delete(accounts, {"pk": s("USER#u1")}), delete(accounts, {"pk": s(f"USERNAME#{name}")}),
        delete(accounts, {"pk": s(f"EMAIL#{name}@example.com")}), delete(profiles, {"user_id": s("u1")}),
        {"Update": {"TableName": security, "Key": {"pk": s("USER#u1")},
                    "UpdateExpression": "SET deleted_at = :now, expires_at = :later ADD gen :one",
                    "ExpressionAttributeValues": {":now": n(1767225600), ":later": n(1767312000),
                                                  ":one": n(1)}}},
    ]}


def profile_write(profiles: str, security: str, user: str, sid: str, write: dict) -> dict:
    """A profile write (`write`: a Put or an Update action on `profiles`) as
    crates/stores/src/dynamodb/profiles.rs sends it, with the write guard's
    checks: the writer's USER# marker (not deleted, the session's generation) and its
    SESSION# (the user's, not ended, not expired)."""
    return {"TransactItems": [
        write,
        {"ConditionCheck": {
            "TableName": security, "Key": {"pk": s(f"USER#{user}")},
            "ConditionExpression": "attribute_not_exists(pk) OR (attribute_not_exists(deleted_at) "
                                   "AND (gen = :gen OR kept = :sid))",
            "ExpressionAttributeValues": {":gen": n(0), ":sid": s(sid)}}},
        {"ConditionCheck": {
            "TableName": security, "Key": {"pk": s(f"SESSION#{sid}")},
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(ended_at) "
                                   "AND user_id = :uid AND gen = :gen AND expires_at > :now",
            "ExpressionAttributeValues": {":uid": s(user), ":gen": n(0), ":now": n(1767225600)}}},
    ]}


def change_password(accounts: str, name: str) -> dict:
    """A password change: the hash and gen of the account and of its username copy."""
    update = lambda pk: {"Update": {
        "TableName": accounts, "Key": {"pk": s(pk)},
        "UpdateExpression": "SET password_hash = :hash ADD gen :one",
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeValues": {":hash": s("$2b$04$y"), ":one": n(1)}}}
    return {"TransactItems": [update("USER#u1"), update(f"USERNAME#{name}")]}


def mail_token_item(token_hash: str, purpose: str) -> dict:
    """A mailed token (MAIL#<hash>, crates/stores/src/TABLES.md)."""
    return {"pk": s(f"MAIL#{token_hash}"), "purpose": s(purpose), "user_id": s("u1"),
            "email": s("alice@example.com"), "expires_at": n(4102444800)}


def issue_token(security: str, token_hash: str, purpose: str) -> dict:
    """A mailed token issued: its MAIL# item and the user's MAILS# pointer to it, at once."""
    return {"TransactItems": [
        {"Put": {"TableName": security, "Item": mail_token_item(token_hash, purpose),
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"TableName": security, "Item": {"pk": s(f"MAILS#u1#{purpose}"), "latest": s(token_hash),
                                                  "expires_at": n(4102444800)}}},
    ]}


def change_email(accounts: str, profiles: str, security: str, name: str) -> dict:
    """A confirmed email change as crates/stores/src/dynamodb/cross_table.rs writes it:
    the token used up (deleted, its pointer checked), the account and its username copy
    moved to the new address, the old claim deleted, the new one put, the profile's
    copy of the address updated."""
    new = "alice.new@example.com"
    update = lambda table, k, expr, values: {"Update": {  # noqa: E731
        "TableName": table, "Key": k, "UpdateExpression": expr, "ExpressionAttributeValues": values}}
    moved = {":e": s(new), ":t": {"BOOL": True}}
    return {"TransactItems": [
        {"Delete": {"TableName": security, "Key": {"pk": s("MAIL#h2")},
                    "ConditionExpression": "attribute_exists(pk) AND purpose = :p",
                    "ExpressionAttributeValues": {":p": s("change_email")}}},
        {"ConditionCheck": {"TableName": security, "Key": {"pk": s("MAILS#u1#change_email")},
                            "ConditionExpression": "latest = :h", "ExpressionAttributeValues": {":h": s("h2")}}},
        update(accounts, {"pk": s("USER#u1")}, "SET email = :e, email_verified = :t", moved),
        update(accounts, {"pk": s(f"USERNAME#{name}")}, "SET email = :e, email_verified = :t", moved),
        {"Delete": {"TableName": accounts, "Key": {"pk": s(f"EMAIL#{name}@example.com")}}},
        {"Put": {"TableName": accounts, "Item": {"pk": s(f"EMAIL#{new}"), "user_id": s("u1")},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        update(profiles, {"user_id": s("u1")}, "SET email = :e", {":e": s(new)}),
    ]}


def sessions_of(user: str) -> dict:
    return {"IndexName": "sessions-by-user", "KeyConditionExpression": "session_user = :u",
            "ExpressionAttributeValues": {":u": s(user)}, "ScanIndexForward": False, "Limit": 100}


def public_key_item(kid: str) -> dict:
    """A KEY#<kid> item as auth publishes it (crates/stores/src/dynamodb/keys.rs)."""
    return {"pk": s(f"KEY#{kid}"), "x": s("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "alg": s("EdDSA"), "created_at": n(1767225600)}


def session_check(sid: str, user: str, *extra: str) -> dict:
    """The users function's per-request read: SESSION#<sid> and USER#<sub> at once."""
    keys = [{"pk": s(f"SESSION#{sid}")}, {"pk": s(f"USER#{user}")}]
    return {"RequestItems": {TABLES["security"]: {"Keys": keys, "ConsistentRead": True},
                             **{table: {"Keys": [{"pk": s("USER#u1")}]} for table in extra}}}


def expect_items(answer: dict, pks: list) -> None:
    got = [item["pk"]["S"] for item in answer["Items"]]
    if got != pks:
        raise AssertionError(f"expected {pks}, got {got}")


def expect_item(answer: dict, pk: str) -> None:
    got = answer.get("Item", {}).get("pk", {}).get("S")
    if got != pk:
        raise AssertionError(f"expected {pk}, got {got}")


def key(pk: str) -> dict:
    return {"Key": {"pk": s(pk)}}


def mail(ses, sender: str, to: str = "alice@example.net") -> None:
    """A verification mail as crates/mail's SesMailer sends it: SES v2 SendEmail, simple
    content, UTF-8 subject, text and HTML; then it must be in moto's /_aws/ses."""
    part = lambda data: {"Data": data, "Charset": "UTF-8"}  # noqa: E731
    sent = ses.send_email(FromEmailAddress=sender, Destination={"ToAddresses": [to]}, Content={
        "Simple": {"Subject": part("Verify your email"),
                   "Body": {"Text": part("https://app.example.com/verify-email#token=x"),
                            "Html": part('<a href="https://app.example.com/verify-email#token=x">Verify</a>')}}})
    url = ses.meta.endpoint_url
    _, _, body = net.request("GET", f"{url}/_aws/ses?id={sent['MessageId']}")
    got = [(m["Source"], m["Destination"]["ToAddresses"]) for m in json.loads(body)["messages"]]
    if got != [(sender, [to])]:
        raise AssertionError(f"/_aws/ses shows {got} for {sent['MessageId']}")


def raw_mail(sender: str) -> bytes:
    return f"From: {sender}\r\nTo: alice@example.net\r\nSubject: s\r\n\r\nbody\r\n".encode()


def ses_grant_on_domain(template: Path) -> str:
    """`template` with AuthFunction's SendEmail granted on MailFrom's domain's identity
    (the domain verified, the address not) instead of on MailFrom's."""
    text = template.read_text()
    old = ":identity/${MailFrom}\""
    assert text.count(old) == 1, "fault not planted"
    return text.replace(old, f":identity/{MAIL_FROM.split('@')[1]}\"")


def without_accounts_putitem(template: Path) -> str:
    """`template` with dynamodb:PutItem taken out of AuthFunction's AccountsTable statement."""
    text = template.read_text()
    faulty, n = re.subn(r"(Sid: AccountsTable\n(?:.*\n)*?)[ \t]*- dynamodb:PutItem\n", r"\1", text, count=1)
    assert n == 1 and "Sid: AccountsTable" in faulty, "fault not planted"
    return faulty


def query_on_table_not_index(template: Path) -> str:
    """`template` with AuthFunction's Query granted on the security table's ARN instead
    of its sessions-by-user index's."""
    text = template.read_text()
    old = 'Resource: !Sub "${SecurityTable.Arn}/index/sessions-by-user"'
    assert text.count(old) == 1, "fault not planted"
    return text.replace(old, "Resource: !GetAtt SecurityTable.Arn")


def main() -> None:
    A, P, S = TABLES["accounts"], TABLES["profiles"], TABLES["security"]

    print("== the template's policies (moto_serial.py --iam)")
    with moto("--iam") as url:
        keys = deploy(url)
        fn, ses = clients(url, keys), clients(url, keys, "sesv2")
        auth, users, gateway = fn["AuthFunction"], fn["UsersFunction"], fn["GatewayFunction"]

        check("AuthFunction GetItem accounts", lambda: auth.get_item(TableName=A, **key("USERNAME#alice")), "allowed")
        check("AuthFunction PutItem accounts", lambda: auth.put_item(TableName=A, Item={"pk": s("USER#x")}), "allowed")
        check("AuthFunction TransactWriteItems registration (3 conditional Puts on accounts)",
              lambda: auth.transact_write_items(**register(A, "alice", "u1")), "allowed")
        check("AuthFunction PutItem security (a session)",
              lambda: auth.put_item(TableName=S, Item=session_item("s1", "u1", 1767225600)), "allowed")
        auth.put_item(TableName=S, Item=session_item("s2", "u1", 1767225700))
        check("AuthFunction PutItem security (refresh token)",
              lambda: auth.put_item(TableName=S, Item=refresh_item("old"),
                                    ConditionExpression="attribute_not_exists(pk)"), "allowed")
        check("AuthFunction TransactWriteItems rotation (2 Updates + 1 Put on security)",
              lambda: auth.transact_write_items(**rotate(S, "old", "new")), "allowed")
        check("AuthFunction GetItem security", lambda: auth.get_item(TableName=S, **key("REFRESH#new")), "allowed")
        check("AuthFunction PutItem security (its public key KEY#kid, before its first token)",
              lambda: auth.put_item(TableName=S, Item=public_key_item("k1"),
                                    ConditionExpression="attribute_not_exists(pk)"), "allowed")
        check("AuthFunction UpdateItem security (the KEYS registry of its key ids)",
              lambda: auth.update_item(TableName=S, **key("KEYS"), UpdateExpression="ADD kids :k",
                                       ExpressionAttributeValues={":k": {"SS": ["k1"]}}), "allowed")
        check("AuthFunction TransactWriteItems mailed token issued (MAIL# + MAILS# pointer on security)",
              lambda: auth.transact_write_items(**issue_token(S, "h1", "verify_email")), "allowed")
        check("AuthFunction GetItem security MAIL# (consistent, the token looked up)",
              lambda: expect_item(auth.get_item(TableName=S, ConsistentRead=True, **key("MAIL#h1")), "MAIL#h1"),
              "allowed")
        auth.transact_write_items(**issue_token(S, "h2", "change_email"))
        check("AuthFunction BatchGetItem security (a session and its user marker)",
              lambda: auth.batch_get_item(**session_check("s1", "u1")), "allowed")
        check("AuthFunction Query security index sessions-by-user",
              lambda: expect_items(auth.query(TableName=S, **sessions_of("u1")), ["SESSION#s2", "SESSION#s1"]),
              "allowed")
        check("AuthFunction UpdateItem security (a session ended: REMOVE session_user)",
              lambda: auth.update_item(TableName=S, **key("SESSION#s2"),
                                       UpdateExpression="SET ended_at = :now REMOVE session_user",
                                       ExpressionAttributeValues={":now": n(1767225800)}), "allowed")
        check("AuthFunction Query security index sessions-by-user (the ended session has left it)",
              lambda: expect_items(auth.query(TableName=S, **sessions_of("u1")), ["SESSION#s1"]), "allowed")
        check("AuthFunction Query security table (no index: granted on the index only)",
              lambda: auth.query(TableName=S, KeyConditionExpression="pk = :pk",
                                 ExpressionAttributeValues={":pk": s("SESSION#s1")}), "denied")
        check("AuthFunction Scan security", lambda: auth.scan(TableName=S), "denied")
        check("AuthFunction Scan security index", lambda: auth.scan(TableName=S, IndexName="sessions-by-user"), "denied")
        check("AuthFunction Scan accounts", lambda: auth.scan(TableName=A), "denied")
        check("AuthFunction TransactWriteItems password change (2 Updates on accounts)",
              lambda: auth.transact_write_items(**change_password(A, "alice")), "allowed")
        check("AuthFunction TransactWriteItems account deletion (3 Deletes on accounts, "
              "1 Delete on profiles, 1 Update on security)",
              lambda: auth.transact_write_items(**delete_account(A, P, S, "alice")), "allowed")
        check("AuthFunction DeleteItem profiles", lambda: auth.delete_item(TableName=P, Key={"user_id": s("u1")}), "allowed")
        check("AuthFunction PutItem profiles", lambda: auth.put_item(TableName=P, Item={"user_id": s("u1")}), "denied")
        check("AuthFunction Scan profiles", lambda: auth.scan(TableName=P), "denied")
        check("AuthFunction TransactWriteItems Put accounts + Put profiles",
              lambda: auth.transact_write_items(TransactItems=[
                  {"Put": {"TableName": A, "Item": {"pk": s("USER#y")}}},
                  {"Put": {"TableName": P, "Item": {"user_id": s("u2")}}}]), "denied")

        check("UsersFunction PutItem profiles", lambda: users.put_item(TableName=P, Item={"user_id": s("u1")}), "allowed")
        check("AuthFunction GetItem profiles (consistent: before an email change)",
              lambda: auth.get_item(TableName=P, Key={"user_id": s("u1")}, ConsistentRead=True), "allowed")
        check("AuthFunction TransactWriteItems email change (mailed token used, account and claims moved, "
              "profile's email updated)",
              lambda: auth.transact_write_items(**change_email(A, P, S, "alice")), "allowed")
        check("AuthFunction Scan profiles (after the grants above)", lambda: auth.scan(TableName=P), "denied")
        check("UsersFunction Scan profiles", lambda: users.scan(TableName=P), "allowed")
        check("UsersFunction BatchGetItem security SESSION#sid + USER#sub",
              lambda: users.batch_get_item(**session_check("s1", "u1")), "allowed")
        check("UsersFunction BatchGetItem security + accounts",
              lambda: users.batch_get_item(**session_check("s1", "u1", A)), "denied")
        auth.put_item(TableName=S, Item=session_item("s9", "u9", 1767225600))
        put_profile = {"Put": {"TableName": P, "Item": {"user_id": s("u9"), "bio": s("")},
                               "ConditionExpression": "attribute_not_exists(user_id)"}}
        check("UsersFunction TransactWriteItems profile create (Put on profiles, ConditionChecks "
              "of USER# and SESSION# on security)",
              lambda: users.transact_write_items(**profile_write(P, S, "u9", "s9", put_profile)), "allowed")
        update_profile = {"Update": {"TableName": P, "Key": {"user_id": s("u9")},
                                     "UpdateExpression": "SET #bio = :bio", "ConditionExpression": "attribute_exists(user_id)",
                                     "ExpressionAttributeNames": {"#bio": "bio"},
                                     "ExpressionAttributeValues": {":bio": s("x")}}}
        check("UsersFunction TransactWriteItems profile update (Update on profiles, the same checks)",
              lambda: users.transact_write_items(**profile_write(P, S, "u9", "s9", update_profile)), "allowed")
        exists = {"ConditionCheck": {"TableName": P, "Key": {"user_id": s("u9")},
                                     "ConditionExpression": "attribute_exists(user_id)"}}
        check("UsersFunction TransactWriteItems empty profile update (ConditionCheck on profiles, the same checks)",
              lambda: users.transact_write_items(**profile_write(P, S, "u9", "s9", exists)), "allowed")
        check("UsersFunction TransactWriteItems profile create + ConditionCheck on accounts",
              lambda: users.transact_write_items(TransactItems=[
                  put_profile, {"ConditionCheck": {"TableName": A, "Key": {"pk": s("USER#u9")},
                                                   "ConditionExpression": "attribute_not_exists(pk)"}}]), "denied")
        check("UsersFunction GetItem security KEYS (the key registry, consistent read)",
              lambda: expect_item(users.get_item(TableName=S, ConsistentRead=True, **key("KEYS")), "KEYS"),
              "allowed")
        check("UsersFunction PutItem security", lambda: users.put_item(TableName=S, Item={"pk": s("SESSION#x")}), "denied")
        check("UsersFunction UpdateItem security",
              lambda: users.update_item(TableName=S, **key("USER#u1"), UpdateExpression="REMOVE deleted_at"), "denied")
        check("UsersFunction Query security index sessions-by-user",
              lambda: users.query(TableName=S, **sessions_of("u1")), "denied")
        check("UsersFunction Scan security", lambda: users.scan(TableName=S), "denied")
        check("UsersFunction GetItem accounts", lambda: users.get_item(TableName=A, **key("USERNAME#alice")), "denied")
        check("UsersFunction PutItem accounts", lambda: users.put_item(TableName=A, Item={"pk": s("USER#z")}), "denied")
        check("UsersFunction Scan accounts", lambda: users.scan(TableName=A), "denied")

        for table, k in ((A, {"pk": s("x")}), (P, {"user_id": s("x")}), (S, {"pk": s("x")})):
            check(f"GatewayFunction GetItem {table}", lambda: gateway.get_item(TableName=table, Key=k), "denied")
            check(f"GatewayFunction PutItem {table}", lambda: gateway.put_item(TableName=table, Item=k), "denied")
            check(f"GatewayFunction Scan {table}", lambda: gateway.scan(TableName=table), "denied")
        check("GatewayFunction ListTables", lambda: gateway.list_tables(), "denied")

        print("-- SES: SendEmail from the MailFrom identity only, and by auth only")
        check(f"AuthFunction SES v2 SendEmail from {MAIL_FROM} (MailFrom)",
              lambda: mail(ses["AuthFunction"], MAIL_FROM), "allowed")
        check(f"AuthFunction SES v2 SendEmail raw content from {MAIL_FROM} (still ses:SendEmail)",
              lambda: ses["AuthFunction"].send_email(Content={"Raw": {"Data": raw_mail(MAIL_FROM)}}), "allowed")
        check(f"AuthFunction SES v2 SendEmail from {OTHER_SENDER} (verified, not MailFrom)",
              lambda: mail(ses["AuthFunction"], OTHER_SENDER), "denied")
        check(f"AuthFunction SES v2 SendEmail from no-reply@{MAIL_DOMAIN} (sent as the domain identity)",
              lambda: mail(ses["AuthFunction"], f"no-reply@{MAIL_DOMAIN}"), "denied")
        check("AuthFunction SES v2 CreateEmailIdentity",
              lambda: ses["AuthFunction"].create_email_identity(EmailIdentity="evil@example.com"), "denied")
        check("AuthFunction SES v2 ListEmailIdentities", lambda: ses["AuthFunction"].list_email_identities(), "denied")
        v1 = client(url, keys["AuthFunction"]["AWS_ACCESS_KEY_ID"], keys["AuthFunction"]["AWS_SECRET_ACCESS_KEY"], "ses")
        check(f"AuthFunction SES v1 SendEmail from {MAIL_FROM} (the same action)",
              lambda: v1.send_email(Source=MAIL_FROM, Destination={"ToAddresses": ["alice@example.net"]},
                                    Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}), "allowed")
        check(f"AuthFunction SES v1 SendRawEmail from {MAIL_FROM} (ses:SendRawEmail: not granted)",
              lambda: v1.send_raw_email(RawMessage={"Data": raw_mail(MAIL_FROM)}), "denied", denial=r"AccessDenied")
        for function in ("UsersFunction", "GatewayFunction"):
            check(f"{function} SES v2 SendEmail from {MAIL_FROM}", lambda: mail(ses[function], MAIL_FROM), "denied")
        try:
            ses["UsersFunction"].send_email(FromEmailAddress=MAIL_FROM, Destination={"ToAddresses": ["a@example.net"]},
                                            Content={"Raw": {"Data": raw_mail(MAIL_FROM)}})
        except ClientError as e:
            meta = e.response["ResponseMetadata"]
            print(f"     a denial: HTTP {meta['HTTPStatusCode']}, x-amzn-ErrorType "
                  f"{meta['HTTPHeaders'].get('x-amzn-errortype')}, {e.response['Error']['Message']}")

        print("-- how a denial looks")
        try:
            users.get_item(TableName=A, **key("USERNAME#alice"))
        except ClientError as e:
            print(f"     HTTP {e.response['ResponseMetadata']['HTTPStatusCode']}, "
                  f"{e.response['Error']['Code']}: {e.response['Error']['Message']}")
        check("unknown key GetItem accounts", lambda: client(url, "test", "test").get_item(
            TableName=A, **key("x")), "denied", denial="UnrecognizedClientException")

        print("-- not enforced: Condition (UsersFunction may BatchGetItem security only where "
              "dynamodb:LeadingKeys is like SESSION#* or USER#*; AWS denies REFRESH#x)")
        check("UsersFunction BatchGetItem security REFRESH#x (allowed here, denied in AWS)",
              lambda: users.batch_get_item(RequestItems={S: {"Keys": [{"pk": s("REFRESH#x")}]}}), "allowed")
        print("-- not enforced: Condition (UsersFunction may ConditionCheckItem security only where "
              "dynamodb:LeadingKeys is like SESSION#* or USER#*; AWS denies REFRESH#x)")
        check("UsersFunction TransactWriteItems ConditionCheck security REFRESH#x (allowed here, denied in AWS)",
              lambda: users.transact_write_items(TransactItems=[
                  {"ConditionCheck": {"TableName": S, "Key": {"pk": s("REFRESH#x")},
                                      "ConditionExpression": "attribute_not_exists(pk)"}}]), "allowed")
        print("-- not enforced: Condition (UsersFunction may GetItem security only where "
              "dynamodb:LeadingKeys is KEYS; AWS denies SESSION#s1)")
        check("UsersFunction GetItem security SESSION#s1 (allowed here, denied in AWS)",
              lambda: users.get_item(TableName=S, **key("SESSION#s1")), "allowed")

    print("== planted fault: AuthFunction without dynamodb:PutItem on AccountsTable")
    with tempfile.TemporaryDirectory() as tmp, moto("--iam") as url:
        faulty = Path(tmp) / "template.yaml"
        faulty.write_text(without_accounts_putitem(TEMPLATE))
        auth = clients(url, deploy(url, faulty))["AuthFunction"]
        check("AuthFunction TransactWriteItems registration", lambda: auth.transact_write_items(**register(A, "bob")), "denied")
        check("AuthFunction PutItem accounts", lambda: auth.put_item(TableName=A, Item={"pk": s("USER#x")}), "denied")
        check("AuthFunction GetItem accounts (still granted)", lambda: auth.get_item(TableName=A, **key("x")), "allowed")
        check("AuthFunction PutItem security (still granted)", lambda: auth.put_item(TableName=S, Item=refresh_item("t")), "allowed")

    print("== planted fault: AuthFunction's Query granted on the security table, not its index")
    with tempfile.TemporaryDirectory() as tmp, moto("--iam") as url:
        faulty = Path(tmp) / "template.yaml"
        faulty.write_text(query_on_table_not_index(TEMPLATE))
        auth = clients(url, deploy(url, faulty))["AuthFunction"]
        check("AuthFunction Query security index sessions-by-user",
              lambda: auth.query(TableName=S, **sessions_of("u1")), "denied")
        check("AuthFunction Query security table (allowed by the fault, never used)",
              lambda: auth.query(TableName=S, KeyConditionExpression="pk = :pk",
                                 ExpressionAttributeValues={":pk": s("SESSION#s1")}), "allowed")

    print("== planted fault: AuthFunction's SendEmail granted on MailFrom's domain, not the address")
    with tempfile.TemporaryDirectory() as tmp, moto("--iam") as url:
        faulty = Path(tmp) / "template.yaml"
        faulty.write_text(ses_grant_on_domain(TEMPLATE))
        ses = clients(url, deploy(url, faulty), "sesv2")
        check(f"AuthFunction SES v2 SendEmail from {MAIL_FROM} (the address is a verified identity of its own)",
              lambda: mail(ses["AuthFunction"], MAIL_FROM), "denied")
        check(f"AuthFunction SES v2 SendEmail from {OTHER_SENDER} (the same: verified itself)",
              lambda: mail(ses["AuthFunction"], OTHER_SENDER), "denied")

    print(f"== MailFrom no-reply@{MAIL_DOMAIN}: only its domain verified, so sent as the domain identity")
    with moto("--iam") as url:
        ses = clients(url, deploy(url, mail_from=f"no-reply@{MAIL_DOMAIN}"), "sesv2")
        check(f"AuthFunction SES v2 SendEmail from no-reply@{MAIL_DOMAIN} (granted on the address, "
              f"authorised as {MAIL_DOMAIN}: verify the address itself)",
              lambda: mail(ses["AuthFunction"], f"no-reply@{MAIL_DOMAIN}"), "denied")

    print("== moto without --iam, enforcing (why --iam exists)")
    with moto() as url:
        keys = deploy(url)
        auth = clients(url, keys)["AuthFunction"]
        check(f"AuthFunction SES v2 SendEmail from {MAIL_FROM} (resource '*' matches no identity ARN; "
              "the denial in XML, which an SES v2 client cannot read)",
              lambda: mail(clients(url, keys, "sesv2")["AuthFunction"], MAIL_FROM), "denied",
              r"<Code>AccessDenied</Code>")
        check("AuthFunction GetItem accounts (resource '*' matches no table ARN)",
              lambda: auth.get_item(TableName=A, **key("x")), "denied", r"<Code>AccessDenied</Code>")
        check("AuthFunction TransactWriteItems registration (checked as dynamodb:TransactWriteItems)",
              lambda: auth.transact_write_items(**register(A, "carol")), "denied",
              r"not authorized to perform: dynamodb:TransactWriteItems")

    if failures:
        print(f"test_iam: {len(failures)} check(s) failed: {', '.join(failures)}")
        sys.exit(1)
    print("test_iam: all checks passed")


if __name__ == "__main__":
    main()
