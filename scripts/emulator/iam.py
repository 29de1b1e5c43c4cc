#!/usr/bin/env python3
"""Give each function of template.yaml its own credentials in a local moto, holding
exactly the function's template Policies, then switch moto's IAM enforcement on.

For every AWS::Serverless::Function this creates an IAM user named after its logical id,
puts each inline policy document of its `Policies` on it (`!GetAtt <Table>.Arn` resolved
to the local table's ARN, `!Ref <Table>` to its name, and in `!Sub` text `${<Table>.Arn}`
and `${<Table>}` the same way, e.g. `!Sub "${SecurityTable.Arn}/index/sessions-by-user"`
to the local index's ARN, `${AWS::Region}`, `${AWS::AccountId}`, `${AWS::Partition}`
to moto's, and a parameter to its value: `--parameter-overrides Name=Value`, else its
Default; e.g. auth's SES grant `!Sub "arn:${AWS::Partition}:ses:...:identity/${MailFrom}"`
to the identity ARN of the MailFrom given), creates an access key and prints
{"AuthFunction": {"AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...}, ...} on stdout.
A function without Policies gets a user with no permissions. Anything else it cannot
resolve (other intrinsics, SAM policy templates such as DynamoDBCrudPolicy, managed
policies, a Role) stops it with an error: the emulation would otherwise differ from AWS.

Order and credentials. moto checks no credentials until it enforces IAM, which
scripts/emulator/moto_serial.py leaves off at start (moto's INITIAL_NO_AUTH_ACTION_COUNT unset:
"never"). So: start `moto_serial.py --iam`, create the tables (create_tables.py, any
keys), run this script (any keys); its last step is POST /moto-api/reset-auth with body
"0", after which every request must be signed with a key moto knows and is checked
against that key's policies. Counting requests with INITIAL_NO_AUTH_ACTION_COUNT=N
instead would need N to match create_tables' waiter polls, which vary. There is no
admin key afterwards: run this once, on a fresh moto, after everything else is set up.
(/moto-api/reset-auth itself is never checked: "inf" there switches enforcement off.)

What moto then enforces (with moto_serial.py --iam; see its docstring): Action, the
table ARN of Resource, Allow/Deny, TransactWriteItems item by item, and SES sends
against the identity ARN of their From address. What it does not:
Condition blocks (e.g. dynamodb:LeadingKeys) are ignored, so a conditional Allow acts
as an unconditional one.

Usage: python -m scripts.emulator.iam --endpoint URL [--template T] [--accounts A --profiles P --security S]
                                      [--parameter-overrides Name=Value ...]
"""
import argparse
import json
import os
import sys
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from scripts.lib import net
from scripts.lib import template as model


def fail(msg: str):
    raise SystemExit(f"iam: {msg}")


def function_policies(template: Path, refs: dict, arns: dict) -> dict:
    """The resolved inline policy documents of each function, by logical id."""
    loaded = model.load(template)
    if "Policies" in loaded.get("Globals", {}).get("Function", {}):
        fail("Globals.Function.Policies is not supported")
    found = {}
    for logical_id, props in model.functions(loaded).items():
        if "Role" in props:
            fail(f"{logical_id}: a Role is not supported, only inline Policies")
        documents = []
        for i, policy in enumerate(model.policies(props)):
            where = f"{logical_id}.Policies[{i}]"
            if not isinstance(policy, dict) or "Statement" not in policy:
                what = next(iter(policy)) if isinstance(policy, dict) else policy
                fail(f"{where}: {what!r} is not an inline policy document (SAM policy "
                     "templates and managed policies are not supported)")
            try:
                documents.append(model.resolve(policy, refs, arns, where))
            except model.TemplateError as e:
                fail(str(e))
        found[logical_id] = documents
    if not found:
        fail(f"{template} has no AWS::Serverless::Function")
    return found


def parameter_values(template: Path, overrides: list) -> dict:
    """Each parameter of `template` -> its value: the override given, else its Default
    (one without either is left out: a policy naming it then stops this script)."""
    declared = model.parameters(model.load(template))
    given = {}
    for pair in overrides:
        name, sep, value = pair.partition("=")
        if not sep:
            fail(f"--parameter-overrides takes Name=Value, got {pair!r}")
        if name not in declared:
            fail(f"--parameter-overrides names {name}, which {template} does not declare")
        given[name] = value
    values = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    values.update(given)
    return values


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", default=os.environ.get("DYNAMODB_ENDPOINT"),
                   help="moto's URL (default: $DYNAMODB_ENDPOINT)")
    p.add_argument("--template", type=Path, default=model.TEMPLATE, help="the SAM template")
    p.add_argument("--parameter-overrides", nargs="*", default=[], metavar="NAME=VALUE",
                   help="parameter values over the template's defaults, as `sam deploy` takes them")
    for name in model.TABLES.values():
        p.add_argument(f"--{name.option}", default=os.environ.get(name.env, name.option))
    args = p.parse_args()
    if not args.endpoint:
        fail("--endpoint (or DYNAMODB_ENDPOINT) is required: this only sets up a local moto")

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = boto3.Session(aws_access_key_id="setup", aws_secret_access_key="setup",
                            region_name=region)
    iam = session.client("iam", endpoint_url=args.endpoint)
    try:
        account = session.client("sts", endpoint_url=args.endpoint).get_caller_identity()["Account"]
    except ClientError as e:
        fail(f"moto refused the setup request ({e}); it must not enforce IAM yet: "
             "run this once, on a fresh moto_serial.py --iam")

    refs = parameter_values(args.template, args.parameter_overrides)
    refs.update({logical_id: getattr(args, name.option) for logical_id, name in model.TABLES.items()})
    arns = {logical_id: f"arn:aws:dynamodb:{region}:{account}:table/{refs[logical_id]}"
            for logical_id in model.TABLES}
    refs.update({"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws"})
    keys = {}
    for function, documents in function_policies(args.template, refs, arns).items():
        iam.create_user(UserName=function)
        for i, document in enumerate(documents):
            iam.put_user_policy(UserName=function, PolicyName=f"{function}Policy{i}",
                                PolicyDocument=json.dumps(document))
        key = iam.create_access_key(UserName=function)["AccessKey"]
        keys[function] = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                          "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        print(f"iam: user {function}, inline policies: {len(documents)}", file=sys.stderr)

    status, _, answer = net.request("POST", f"{args.endpoint.rstrip('/')}/moto-api/reset-auth", b"0",
                                    {"Content-Type": "text/plain"})
    if status != 200:
        fail(f"moto refused to enforce IAM: {status} {answer[:200]!r}")
    json.loads(answer)
    print("iam: moto now enforces IAM", file=sys.stderr)
    json.dump(keys, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
