#!/usr/bin/env python3
"""Self-test of the IAM emulation (scripts/iam.py + scripts/moto_serial.py --iam).

Starts moto_serial.py --iam on a free port, creates the tables (create_tables.py), gives
each function its template policies (iam.py) and then calls DynamoDB with each
function's keys, the way the functions' code does, checking what is allowed and what is
denied. Then shows a planted fault (the template without one Action of AuthFunction)
failing, the known gap (conditions), and what moto does without --iam.
Prints every check; exits 1 if any fails. Usage: python scripts/test_iam.py
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

SCRIPTS = Path(__file__).resolve().parent
TEMPLATE = SCRIPTS.parent / "template.yaml"
TABLES = {"accounts": "accounts", "profiles": "profiles", "security": "security"}
REGION = "us-east-1"
ENV = {**os.environ, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
       "AWS_ACCESS_KEY_ID": "setup", "AWS_SECRET_ACCESS_KEY": "setup"}
failures = []


@contextmanager
def moto(*options):
    """A moto_serial.py on a free port, stopped on exit; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "moto_serial.py"), "-p", str(port),
                             *options], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/moto-api/data.json").close()
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        else:
            raise SystemExit("test_iam: moto did not start")
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"test_iam: moto exited:\n{log.read().decode()}")
        yield url
    finally:
        proc.terminate()
        proc.wait()


def run(script: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(SCRIPTS / script), *args], env=ENV,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"test_iam: {script} failed:\n{out.stderr}")
    return out.stdout


def deploy(url: str, template: Path = TEMPLATE) -> dict:
    """Tables from the real template, users from `template`; a DynamoDB client per function."""
    tables = [f"--{option}={name}" for option, name in TABLES.items()]
    run("create_tables.py", f"--endpoint={url}", *tables)
    keys = json.loads(run("iam.py", f"--endpoint={url}", f"--template={template}", *tables))
    return {function: client(url, k["AWS_ACCESS_KEY_ID"], k["AWS_SECRET_ACCESS_KEY"])
            for function, k in keys.items()}


def client(url: str, key_id: str, secret: str):
    return boto3.client("dynamodb", endpoint_url=url, region_name=REGION,
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
    ok = got == expect
    if not ok:
        failures.append(label)
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {got}{detail}")


def s(value: str) -> dict:
    return {"S": value}


def register(table: str, name: str) -> dict:
    """The registration transaction of functions/shared/src/store/dynamodb/accounts.rs."""
    user_id = str(uuid.uuid4())
    record = {"user_id": s(user_id), "username": s(name), "email": s(f"{name}@example.com"),
              "password_hash": s("$2b$04$x"), "created_at": s("2026-01-01T00:00:00Z")}
    put = lambda pk, item: {"Put": {"TableName": table, "Item": {**item, "pk": s(pk)},
                                    "ConditionExpression": "attribute_not_exists(pk)"}}
    return {"TransactItems": [put(f"USER#{user_id}", record), put(f"USERNAME#{name}", record),
                              put(f"EMAIL#{name}@example.com", {"user_id": s(user_id)})]}


def refresh_item(token: str) -> dict:
    return {"pk": s(f"REFRESH#{token}"), "family": s("f1"), "user_id": s("u1"),
            "username": s("alice"), "expires_at": {"N": "4102444800"}, "used": {"BOOL": False}}


def rotate(table: str, old: str, new: str) -> dict:
    """The refresh-token rotation of functions/shared/src/store/dynamodb/refresh.rs."""
    return {"TransactItems": [
        {"Update": {"TableName": table, "Key": {"pk": s(f"REFRESH#{old}")},
                    "UpdateExpression": "SET #used = :true", "ConditionExpression": "#used = :false",
                    "ExpressionAttributeNames": {"#used": "used"},
                    "ExpressionAttributeValues": {":true": {"BOOL": True}, ":false": {"BOOL": False}}}},
        {"ConditionCheck": {"TableName": table, "Key": {"pk": s("FAMILY#f1")},
                            "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                            "ExpressionAttributeValues": {":now": {"N": "1767225600"}}}},
        {"Put": {"TableName": table, "Item": refresh_item(new),
                 "ConditionExpression": "attribute_not_exists(pk)"}},
    ]}


def key(pk: str) -> dict:
    return {"Key": {"pk": s(pk)}}


def without_accounts_putitem(template: Path) -> str:
    """`template` with dynamodb:PutItem taken out of AuthFunction's AccountsTable statement."""
    text = template.read_text()
    faulty, n = re.subn(r"(Sid: AccountsTable\n(?:.*\n)*?)[ \t]*- dynamodb:PutItem\n", r"\1", text, count=1)
    assert n == 1 and "Sid: AccountsTable" in faulty, "fault not planted"
    return faulty


def main() -> None:
    A, P, S = TABLES["accounts"], TABLES["profiles"], TABLES["security"]

    print("== the template's policies (moto_serial.py --iam)")
    with moto("--iam") as url:
        fn = deploy(url)
        auth, users, gateway = fn["AuthFunction"], fn["UsersFunction"], fn["GatewayFunction"]

        check("AuthFunction GetItem accounts", lambda: auth.get_item(TableName=A, **key("USERNAME#alice")), "allowed")
        check("AuthFunction PutItem accounts", lambda: auth.put_item(TableName=A, Item={"pk": s("USER#x")}), "allowed")
        check("AuthFunction TransactWriteItems registration (3 conditional Puts on accounts)",
              lambda: auth.transact_write_items(**register(A, "alice")), "allowed")
        check("AuthFunction PutItem security (refresh token)",
              lambda: auth.put_item(TableName=S, Item=refresh_item("old"),
                                    ConditionExpression="attribute_not_exists(pk)"), "allowed")
        check("AuthFunction TransactWriteItems rotation (Update + ConditionCheck + Put on security)",
              lambda: auth.transact_write_items(**rotate(S, "old", "new")), "allowed")
        check("AuthFunction GetItem security", lambda: auth.get_item(TableName=S, **key("REFRESH#new")), "allowed")
        check("AuthFunction Scan accounts", lambda: auth.scan(TableName=A), "denied")
        check("AuthFunction UpdateItem accounts (granted on security only)",
              lambda: auth.update_item(TableName=A, **key("USER#x"), UpdateExpression="SET a = :a",
                                       ExpressionAttributeValues={":a": s("b")}), "denied")
        check("AuthFunction GetItem profiles", lambda: auth.get_item(TableName=P, Key={"user_id": s("u1")}), "denied")
        check("AuthFunction PutItem profiles", lambda: auth.put_item(TableName=P, Item={"user_id": s("u1")}), "denied")
        check("AuthFunction Scan profiles", lambda: auth.scan(TableName=P), "denied")
        check("AuthFunction TransactWriteItems Put accounts + Put profiles",
              lambda: auth.transact_write_items(TransactItems=[
                  {"Put": {"TableName": A, "Item": {"pk": s("USER#y")}}},
                  {"Put": {"TableName": P, "Item": {"user_id": s("u2")}}}]), "denied")

        check("UsersFunction PutItem profiles", lambda: users.put_item(TableName=P, Item={"user_id": s("u1")}), "allowed")
        check("UsersFunction Scan profiles", lambda: users.scan(TableName=P), "allowed")
        check("UsersFunction GetItem security REVOKED#jti", lambda: users.get_item(TableName=S, **key("REVOKED#jti")), "allowed")
        check("UsersFunction PutItem security", lambda: users.put_item(TableName=S, Item={"pk": s("REVOKED#jti")}), "denied")
        check("UsersFunction Scan security", lambda: users.scan(TableName=S), "denied")
        check("UsersFunction GetItem accounts", lambda: users.get_item(TableName=A, **key("USERNAME#alice")), "denied")
        check("UsersFunction PutItem accounts", lambda: users.put_item(TableName=A, Item={"pk": s("USER#z")}), "denied")
        check("UsersFunction Scan accounts", lambda: users.scan(TableName=A), "denied")

        for table, k in ((A, {"pk": s("x")}), (P, {"user_id": s("x")}), (S, {"pk": s("x")})):
            check(f"GatewayFunction GetItem {table}", lambda: gateway.get_item(TableName=table, Key=k), "denied")
            check(f"GatewayFunction PutItem {table}", lambda: gateway.put_item(TableName=table, Item=k), "denied")
            check(f"GatewayFunction Scan {table}", lambda: gateway.scan(TableName=table), "denied")
        check("GatewayFunction ListTables", lambda: gateway.list_tables(), "denied")

        print("-- how a denial looks")
        try:
            users.get_item(TableName=A, **key("USERNAME#alice"))
        except ClientError as e:
            print(f"     HTTP {e.response['ResponseMetadata']['HTTPStatusCode']}, "
                  f"{e.response['Error']['Code']}: {e.response['Error']['Message']}")
        check("unknown key GetItem accounts", lambda: client(url, "test", "test").get_item(
            TableName=A, **key("x")), "denied", denial="UnrecognizedClientException")

        print("-- not enforced: Condition (UsersFunction may GetItem security only where "
              "dynamodb:LeadingKeys is like REVOKED#*; AWS denies REFRESH#x)")
        check("UsersFunction GetItem security REFRESH#x (allowed here, denied in AWS)",
              lambda: users.get_item(TableName=S, **key("REFRESH#x")), "allowed")

    print("== planted fault: AuthFunction without dynamodb:PutItem on AccountsTable")
    with tempfile.TemporaryDirectory() as tmp, moto("--iam") as url:
        faulty = Path(tmp) / "template.yaml"
        faulty.write_text(without_accounts_putitem(TEMPLATE))
        auth = deploy(url, faulty)["AuthFunction"]
        check("AuthFunction TransactWriteItems registration", lambda: auth.transact_write_items(**register(A, "bob")), "denied")
        check("AuthFunction PutItem accounts", lambda: auth.put_item(TableName=A, Item={"pk": s("USER#x")}), "denied")
        check("AuthFunction GetItem accounts (still granted)", lambda: auth.get_item(TableName=A, **key("x")), "allowed")
        check("AuthFunction PutItem security (still granted)", lambda: auth.put_item(TableName=S, Item=refresh_item("t")), "allowed")

    print("== moto without --iam, enforcing (why --iam exists)")
    with moto() as url:
        auth = deploy(url)["AuthFunction"]
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
