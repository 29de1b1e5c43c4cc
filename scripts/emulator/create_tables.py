#!/usr/bin/env python3
"""Create the DynamoDB tables the platform uses, as template.yaml defines them (keys,
attribute types, global secondary indexes, billing mode, TTL): AccountsTable,
ProfilesTable and SecurityTable under the names given. Idempotent: existing tables are
kept, and checked against the template (keys and indexes).

Usage: python -m scripts.emulator.create_tables [--endpoint URL] [--template T]
       [--accounts A --profiles P --security S]   (from the repository's root)
"""
import argparse
import os
import sys
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from scripts.lib import template as model


def log(msg: str) -> None:
    print(f"create_tables: {msg}", file=sys.stderr)


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
    for name in model.TABLES.values():
        p.add_argument(f"--{name.option}", default=os.environ.get(name.env, name.option))
    p.add_argument("--template", type=Path, default=model.TEMPLATE, help="the SAM template (default: the repo's)")
    args = p.parse_args()

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    kwargs = {"region_name": region}
    if args.endpoint:
        kwargs["endpoint_url"] = args.endpoint
        # A local endpoint accepts any credentials; don't require real ones.
        kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "test")
        kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("dynamodb", **kwargs)

    try:
        definitions = model.tables(model.load(args.template), str(args.template))
    except model.TemplateError as e:
        raise SystemExit(f"create_tables: {e}") from None
    for logical_id, props in definitions.items():
        name = getattr(args, model.TABLES[logical_id].option)
        ensure_table(client, name, props)
        ttl = props.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled"):
            ensure_ttl(client, name, ttl["AttributeName"])


if __name__ == "__main__":
    main()
