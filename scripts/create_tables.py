#!/usr/bin/env python3
"""Create the DynamoDB tables the platform uses. Idempotent: existing tables are kept.

accounts: partition key `pk` (S), on-demand, TTL on `expires_at`.
profiles: partition key `user_id` (S), on-demand.
security: partition key `pk` (S), on-demand, TTL on `expires_at`.
"""
import argparse
import os
import sys

import boto3
from botocore.exceptions import ClientError


def log(msg: str) -> None:
    print(f"create_tables: {msg}", file=sys.stderr)


def ensure_table(client, name: str, key: str) -> None:
    try:
        client.describe_table(TableName=name)
        log(f"table {name} exists, skipping create")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        log(f"created table {name} (hash key {key})")
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
    args = p.parse_args()

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    kwargs = {"region_name": region}
    if args.endpoint:
        kwargs["endpoint_url"] = args.endpoint
        # A local endpoint accepts any credentials; don't require real ones.
        kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "test")
        kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("dynamodb", **kwargs)

    ensure_table(client, args.accounts, "pk")
    ensure_ttl(client, args.accounts, "expires_at")
    ensure_table(client, args.profiles, "user_id")
    ensure_table(client, args.security, "pk")
    ensure_ttl(client, args.security, "expires_at")


if __name__ == "__main__":
    main()
