#!/usr/bin/env python3
"""Verify SES identities in a local moto, as a deployer verifies MailFrom in SES before
deploying (docs/deploy.md): each email address or domain given becomes an identity
(SES v2 CreateEmailIdentity), which moto takes as verified at once. moto's SES refuses
to send from an address that is neither a verified identity nor of a verified domain
("Email address not verified"), as SES does.

Run it before IAM is enforced (scripts/emulator/iam.py switches enforcement on), like
create_tables.py; an identity that exists already is left as it is.

Usage: python -m scripts.emulator.ses_identities --endpoint URL IDENTITY...
"""
import argparse
import os
import sys

import boto3
from botocore.exceptions import ClientError


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True, help="moto's URL")
    p.add_argument("identities", nargs="+", metavar="IDENTITY", help="an email address or a domain")
    args = p.parse_args()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    ses = boto3.client("sesv2", endpoint_url=args.endpoint, region_name=region,
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    for identity in args.identities:
        try:
            ses.create_email_identity(EmailIdentity=identity)
        except ClientError as e:
            if e.response["Error"]["Code"] != "AlreadyExistsException":
                raise SystemExit(f"ses_identities: {identity}: {e}") from e
        print(f"ses_identities: {identity} verified", file=sys.stderr)


if __name__ == "__main__":
    main()
