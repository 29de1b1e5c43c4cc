"""template.yaml, read once: the CloudFormation tags (`!Ref`, `!GetAtt`, `!Sub`, ...)
become their long forms (`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`, `{"Fn::Sub": ...}`)
and the result is plain dicts and lists, so that a program may copy and change it.
The functions here answer what the programs ask of it: functions, tables, policies,
parameters, and what a value refers to or resolves to. Needs cfn-lint (the tools venv).
"""

import json
import re
from pathlib import Path
from typing import NamedTuple

from cfnlint.decode import cfn_yaml

from scripts.lib import REPO

TEMPLATE = REPO / "template.yaml"
FUNCTION = "AWS::Serverless::Function"
TABLE = "AWS::DynamoDB::Table"


class TableName(NamedTuple):
    """How a program names one of the template's tables: its command-line option and
    the environment variable the functions read it from."""

    option: str
    env: str


# Logical id in template.yaml -> how the scripts name it (create_tables.py, iam.py).
TABLES = {
    "AccountsTable": TableName("accounts", "ACCOUNTS_TABLE"),
    "ProfilesTable": TableName("profiles", "PROFILES_TABLE"),
    "SecurityTable": TableName("security", "SECURITY_TABLE"),
}


class TemplateError(ValueError):
    """The template lacks something asked for, or holds what cannot be resolved."""


def load(path: Path = TEMPLATE) -> dict:
    """The template at `path` as plain JSON values."""
    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def resources(t: dict) -> dict:
    return t.get("Resources", {})


def of_type(t: dict, kind: str) -> dict:
    """Logical id -> resource, for every resource of type `kind`."""
    return {lid: r for lid, r in resources(t).items() if isinstance(r, dict) and r.get("Type") == kind}


def functions(t: dict) -> dict:
    """Logical id -> Properties of every AWS::Serverless::Function."""
    return {lid: r.get("Properties", {}) for lid, r in of_type(t, FUNCTION).items()}


def tables(t: dict, source="the template") -> dict:
    """Logical id -> Properties of each table of TABLES; TemplateError when one is missing."""
    found = {}
    for logical_id in TABLES:
        resource = resources(t).get(logical_id)
        if not resource or resource.get("Type") != TABLE:
            raise TemplateError(f"{source} has no {TABLE} {logical_id}")
        found[logical_id] = resource["Properties"]
    return found


def parameters(t: dict) -> dict:
    return t.get("Parameters", {})


def as_list(value):
    return value if isinstance(value, list) else [value]


def policies(props: dict) -> list:
    """A function's Policies, always as a list."""
    return as_list(props.get("Policies", []))


def refs_in(node):
    """Every logical id a value refers to through Ref, GetAtt or ${...} in Sub."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", str(text)))
                if isinstance(value, list) and len(value) > 1:
                    found.update(refs_in(value[1]))
            else:
                found.update(refs_in(value))
    elif isinstance(node, list):
        for item in node:
            found.update(refs_in(item))
    return found


def substitute(text, refs: dict, arns: dict, where: str) -> str:
    """The text of a `Fn::Sub` with its `${...}` replaced by their values: `${X.Arn}`
    from `arns`, `${X}` from `refs`. TemplateError for anything else."""
    if not isinstance(text, str):
        raise TemplateError(f"{where}: only the string form of !Sub is supported, got {text!r}")

    def value(match):
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name.endswith(".Arn") and name[:-4] in arns:
            return arns[name[:-4]]
        if name in refs:
            return refs[name]
        raise TemplateError(f"{where}: cannot resolve ${{{name}}} in !Sub {text!r}")

    return re.sub(r"\$\{([^}]+)\}", value, text)


def resolve(node, refs: dict, arns: dict, where: str):
    """`node` with Ref / Fn::GetAtt .Arn / Fn::Sub replaced by their values from
    `refs` (logical id -> value of !Ref) and `arns` (logical id -> ARN). TemplateError
    for any other intrinsic function or a name in neither."""
    if isinstance(node, list):
        return [resolve(v, refs, arns, where) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (key, value), = node.items()
        if key == "Ref":
            if value not in refs:
                raise TemplateError(f"{where}: cannot resolve !Ref {value}")
            return refs[value]
        if key == "Fn::GetAtt":
            logical_id, attr = value.split(".", 1) if isinstance(value, str) else value
            if attr != "Arn" or logical_id not in arns:
                raise TemplateError(f"{where}: cannot resolve !GetAtt {logical_id}.{attr}")
            return arns[logical_id]
        if key == "Fn::Sub":
            return substitute(value, refs, arns, where)
        if key.startswith("Fn::"):
            raise TemplateError(f"{where}: cannot resolve {key}")
    return {k: resolve(v, refs, arns, where) for k, v in node.items()}
