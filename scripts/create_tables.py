#!/usr/bin/env python3
"""Create the DynamoDB tables the platform uses, as template.yaml defines them (keys,
attribute types, global secondary indexes, billing mode, TTL): AccountsTable,
ProfilesTable and SecurityTable under the names given. Idempotent: existing tables are
kept, and checked against the template (keys and indexes).
"""
import argparse
import os
import sys
from pathlib import Path

import boto3
from botocore.exceptions import ClientError
from cfnlint.decode import cfn_yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
# Logical id in template.yaml -> the option naming the table here.
TABLES = {"AccountsTable": "accounts", "ProfilesTable": "profiles", "SecurityTable": "security"}


def log(msg: str) -> None:
    print(f"create_tables: {msg}", file=sys.stderr)


def table_definitions(template: Path) -> dict:
    """The Properties of each table of TABLES in the template, by logical id."""
    resources = cfn_yaml.load(str(template))["Resources"]
    found = {}
    for logical_id in TABLES:
        resource = resources.get(logical_id)
        if not resource or resource.get("Type") != "AWS::DynamoDB::Table":
            raise SystemExit(f"create_tables: {template} has no AWS::DynamoDB::Table {logical_id}")
        found[logical_id] = resource["Properties"]
    return found


def index_shapes(indexes) -> dict:
    """Name -> (key schema, projection type) of global secondary indexes, as comparable."""
    return {
        i["IndexName"]: ([dict(k) for k in i["KeySchema"]], i.get("Projection", {}).get("ProjectionType"))
        for i in indexes or []
    }


def ensure_table(client, name: str, props: dict) -> None:
    key_schema = [dict(k) for k in props["KeySchema"]]
    try:
        existing = client.describe_table(TableName=name)["Table"]
        if existing["KeySchema"] != key_schema:
            raise SystemExit(
                f"create_tables: {name} has keys {existing['KeySchema']}, the template says {key_schema}"
            )
        have = index_shapes(existing.get("GlobalSecondaryIndexes"))
        want = index_shapes(props.get("GlobalSecondaryIndexes"))
        if have != want:
            raise SystemExit(
                f"create_tables: {name} has global secondary indexes {have}, the template says {want}; "
                "delete the table (or use other names) to create it as the template says"
            )
        log(f"table {name} exists, skipping create")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        request = {
            "TableName": name,
            "AttributeDefinitions": [dict(a) for a in props["AttributeDefinitions"]],
            "KeySchema": key_schema,
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            request["GlobalSecondaryIndexes"] = [dict(i) for i in props["GlobalSecondaryIndexes"]]
        client.create_table(**request)
        indexes = ", ".join(i["IndexName"] for i in props.get("GlobalSecondaryIndexes", []))
        log(f"created table {name} (keys {', '.join(k['AttributeName'] for k in key_schema)}"
            f"{f'; indexes {indexes}' if indexes else ''})")
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    status = client.describe_table(TableName=name)["Table"]["TableStatus"]
    if status != "ACTIVE":
        raise SystemExit(f"create_tables: table {name} is {status}, not ACTIVE")


def ensure_ttl(client, name: str, attr: str) -> None:
    desc = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if desc.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        if desc.get("AttributeName") != attr:
            raise SystemExit(
                f"create_tables: {name} has TTL on {desc.get('AttributeName')!r}, expected {attr!r}"
            )
        log(f"TTL on {name}.{attr} already enabled")
        return
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": attr},
    )
    log(f"enabled TTL on {name}.{attr}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--endpoint", default=os.environ.get("DYNAMODB_ENDPOINT"),
                   help="DynamoDB endpoint URL (default: $DYNAMODB_ENDPOINT; unset = real AWS)")
    p.add_argument("--accounts", default=os.environ.get("ACCOUNTS_TABLE", "accounts"))
    p.add_argument("--profiles", default=os.environ.get("PROFILES_TABLE", "profiles"))
    p.add_argument("--security", default=os.environ.get("SECURITY_TABLE", "security"))
    p.add_argument("--template", type=Path, default=TEMPLATE, help="the SAM template (default: the repo's)")
    args = p.parse_args()

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    kwargs = {"region_name": region}
    if args.endpoint:
        kwargs["endpoint_url"] = args.endpoint
        # A local endpoint accepts any credentials; don't require real ones.
        kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "test")
        kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("dynamodb", **kwargs)

    for logical_id, props in table_definitions(args.template).items():
        name = getattr(args, TABLES[logical_id])
        ensure_table(client, name, props)
        ttl = props.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled"):
            ensure_ttl(client, name, ttl["AttributeName"])


if __name__ == "__main__":
    main()
