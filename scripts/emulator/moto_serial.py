"""moto's server with its requests serialized: the DynamoDB-compatible server of the
local scripts and tests.

`moto_server` serves each request on its own thread and its backends take no locks,
so `TransactWriteItems` is not isolated there: concurrent transactions on the same
items can both pass their conditions, and a cancelled one restores a copy of the
table taken before it started, erasing writes made in between. Real DynamoDB does
neither. This launcher runs the same WSGI application with one lock around every
request, so each request sees the effects of all earlier ones and none of a later
one, as in DynamoDB. Connections are still accepted and read on their own threads.

With --iam, DynamoDB requests are authorised per table once moto enforces IAM (see
scripts/emulator/iam.py, which sets up the users and switches enforcement on). moto 5.2.5 alone
authorises every DynamoDB request against the resource "*", so a statement naming a
table ARN never matches and everything is denied; it authorises TransactWriteItems as
dynamodb:TransactWriteItems, an action AWS does not have; and it answers a denial with
an IAM-style XML 403 that a DynamoDB client cannot parse. --iam replaces that step for
DynamoDB only, keeping moto's own policy evaluation: Action / NotAction, Resource
with wildcards, Allow and Deny. Not enforced, by moto with or without --iam: Condition
blocks (moto knows only StringEquals and supplies no DynamoDB condition keys such as
dynamodb:LeadingKeys, so a conditional statement applies unconditionally) and
NotResource (a statement without Resource matches every resource).
--iam changes three things:

  * the resource is the request's table ARN (its index ARN with IndexName);
  * TransactWriteItems and TransactGetItems are authorised item by item as PutItem,
    UpdateItem, DeleteItem, ConditionCheckItem or GetItem on that item's table, and
    BatchGetItem and BatchWriteItem once per table, as AWS does;
  * a refusal is DynamoDB's: HTTP 400 with __type AccessDeniedException (or
    UnrecognizedClientException / InvalidSignatureException for unknown keys / bad
    signatures), its message naming the action and the resource as AWS's does.

With --iam, SES's sending calls are authorised per identity too. moto alone
authorises them against the resource "*" as well (so a grant naming an identity never
matches), and answers SES v2's JSON API with an XML error. --iam authorises SES v2
SendEmail and SES v1 SendEmail / SendRawEmail as AWS does: the action (ses:SendEmail,
ses:SendRawEmail) on the ARN of the identity the From address is sent as,
arn:aws:ses:<region>:<account>:identity/<identity>. That identity is the address itself
when it is a verified identity, else its domain when the domain is (and the address
when neither is: SES then rejects the mail as unverified, if IAM let it through). A
refusal is SES's: for v2, HTTP 403 with x-amzn-ErrorType AccessDeniedException and a
JSON body; for v1 an XML AccessDenied; each message "User `<arn>' is not authorized to
perform `ses:SendEmail' on resource `<identity ARN>'", as SES words it. SES's other
actions keep moto's check (resource "*"), their v2 refusals in JSON. Not emulated: the
sandbox, where SES also authorises each recipient's identity.

Without --iam, or before enforcement starts (moto's INITIAL_NO_AUTH_ACTION_COUNT,
default: never), nothing changes.

With --exit-with-parent, the server exits when the process that started it is gone
(`local emulate` starts one per run; a killed emulator must not leave it behind).

What SES was asked to send is read as LocalStack serves it (and as the local stack's
mailbox does, crates/mail/src/mailbox.rs): `GET /_aws/ses` answers {"messages": [...]},
oldest first, each message {"Id", "Region", "Destination": {"ToAddresses": [...]},
"Source", "Subject", "Body": {"text_part", "html_part"}, "Timestamp"} (a raw mail:
{"Id", "Region", "Source", "RawData", "Timestamp"}), from the sent messages of moto's SES
backend, which SES v2's SendEmail uses too. `?id=` keeps the message with that id and
`?email=` those sent from that address (LocalStack's filters), `?to=` (ours) those sent
to that address. `DELETE /_aws/ses` forgets them all, or the one `?id=` names; 204.
moto keeps one body of a mail (the HTML one when both are given) and no time: both
bodies and the time are kept beside it as SendEmail is answered.

Usage: python scripts/emulator/moto_serial.py [-H HOST] [-p PORT] [--iam] [--exit-with-parent]
"""

import argparse
import base64
import email
import json
import os
import re
import signal
import sys
import threading
import time
from email.utils import parseaddr
from urllib.parse import parse_qs, urlparse

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def serialized(app):
    """`app` as a WSGI application that serves one request at a time, body included."""
    lock = threading.Lock()

    def serve(environ, start_response):
        with lock:
            response = app(environ, start_response)
            try:
                return list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()

    return serve


# The IAM action AWS authorises each item of a transaction as.
ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
# moto's IAM error code -> a JSON API's (DynamoDB's, SES v2's).
JSON_ERRORS = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}


def dynamodb_checks(action, params):
    """(IAM action, table or None, index or None) for each authorisation AWS makes."""
    if action in ("TransactWriteItems", "TransactGetItems"):
        return [
            (ITEM_ACTIONS[kind], op["TableName"], None)
            for item in params.get("TransactItems", [])
            for kind, op in item.items()
        ]
    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, table, None) for table in params.get("RequestItems", {})]
    return [(action, params.get("TableName"), params.get("IndexName"))]


def enforcing():
    """Whether moto checks credentials and policies now (see scripts/emulator/iam.py)."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def check_request(handler, action, arn):
    """moto's own signature check and policy evaluation of `handler`'s request, as
    `action` on the resource `arn`; raises moto's error when refused."""
    from moto.iam.access_control import IAMRequest

    query = urlparse(handler.uri).query
    path = handler.raw_path + (f"?{query}" if query else "")
    request = IAMRequest(
        account_id=handler.current_account, method=handler.method, path=path,
        data=handler.data, body=handler.raw_body, headers=handler.headers, action=action,
    )
    request.check_signature()
    request.check_action_permitted(arn)


def authorise_dynamodb_per_table():
    """Make moto authorise DynamoDB requests as described in the module docstring."""
    from moto.core.exceptions import JsonRESTError, _RESTError
    from moto.dynamodb.responses import DynamoHandler
    from moto.utilities.utils import get_partition

    moto_authorise = DynamoHandler._authenticate_and_authorize_normal_action

    def authorise(self, resource="*"):
        if not enforcing():
            return moto_authorise(self, resource)  # not enforcing: moto counts the request
        partition = get_partition(self.region)
        prefix = f"arn:{partition}:dynamodb:{self.region}:{self.current_account}:table/"
        for action, table, index in dynamodb_checks(self._get_action(), self.body):
            arn = "*" if table is None else table if table.startswith("arn:") else prefix + table
            arn += f"/index/{index}" if index else ""
            try:
                check_request(self, action, arn)
            except _RESTError as e:
                code = JSON_ERRORS.get(e.error_type, e.error_type)
                message = e.message
                if e.error_type == "AccessDenied":
                    message += f" on resource: {arn}"
                error = JsonRESTError(f"com.amazon.coral.service#{code}", message)
                error.code = 400
                raise error from e

    DynamoHandler._authenticate_and_authorize_normal_action = authorise


# SES's sending actions authorised per identity (v1 names; v2's SendEmail sends raw
# mail as well, as ses:SendEmail).
SES_SENDS = {"SendEmail", "SendRawEmail"}


def raw_sender(data):
    """The From address of a raw mail (bytes, or text), or None."""
    if isinstance(data, str):
        data = data.encode()
    return email.message_from_bytes(data)["From"] if data else None


def ses_v1_sender(handler):
    """The From address of a SES v1 SendEmail or SendRawEmail request (moto hands the
    raw mail over decoded)."""
    return handler._get_param("Source") or raw_sender(handler._get_param("RawMessage.Data"))


def ses_v2_sender(handler):
    """The From address of a SES v2 SendEmail request."""
    try:
        params = json.loads(handler.body or "{}")
    except ValueError:
        return None
    raw = (params.get("Content") or {}).get("Raw") or {}
    try:
        data = base64.b64decode(raw.get("Data") or "")
    except ValueError:
        data = None
    return params.get("FromEmailAddress") or raw_sender(data)


def sending_identity(account, region, sender):
    """The identity SES sends `sender` as: the address when it is a verified identity,
    else its domain when that is, else the address."""
    from moto.ses.models import ses_backends

    _, address = parseaddr(sender or "")
    identities = ses_backends[account][region].email_identities
    domain = address.rpartition("@")[2]
    return domain if address not in identities and domain in identities else address


def ses_denial(error, action, arn):
    """SES's wording of moto's refusal `error` of `action` on `arn`."""
    if error.error_type != "AccessDenied":
        return error.message
    user = re.match(r"User: (\S+) is not authorized", error.message)
    who = user.group(1) if user else "the caller"
    return f"User `{who}' is not authorized to perform `ses:{action}' on resource `{arn}'"


def authorise_ses_per_identity():
    """Make moto authorise SES requests as described in the module docstring."""
    from moto.core.exceptions import JsonRESTError, _RESTError
    from moto.ses.responses import EmailResponse
    from moto.sesv2.responses import SESV2Response
    from moto.utilities.utils import get_partition

    def authorising(handler_class, sender, json_errors):
        moto_authorise = handler_class._authenticate_and_authorize_normal_action

        def authorise(self, resource="*"):
            if not enforcing():
                return moto_authorise(self, resource)  # not enforcing: moto counts the request
            action = self._get_action()
            arn = None
            try:
                if action in SES_SENDS:
                    identity = sending_identity(self.current_account, self.region, sender(self))
                    arn = f"arn:{get_partition(self.region)}:ses:{self.region}:{self.current_account}:identity/{identity}"
                    check_request(self, action, arn)
                else:
                    moto_authorise(self, resource)
            except _RESTError as e:
                message = ses_denial(e, action, arn) if arn else e.message
                if not json_errors:
                    error = _RESTError(e.error_type, message)
                    error.code = e.code
                    raise error from e
                code = JSON_ERRORS.get(e.error_type, e.error_type)
                self.response_headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": code})
                error = JsonRESTError(code, message)
                error.code = e.code
                raise error from e

        handler_class._authenticate_and_authorize_normal_action = authorise

    authorising(EmailResponse, ses_v1_sender, json_errors=False)
    authorising(SESV2Response, ses_v2_sender, json_errors=True)


SES_PATH = "/_aws/ses"


def keep_ses_bodies():
    """Make moto keep what LocalStack's /_aws/ses shows of a sent mail and moto drops:
    both bodies of a simple mail, and when it was sent (UTC, LocalStack's format)."""
    from moto.ses.responses import EmailResponse
    from moto.sesv2.responses import SESV2Response

    def v1_bodies(response):
        return (response._get_param("Message.Body.Text.Data"),
                response._get_param("Message.Body.Html.Data"))

    def v2_bodies(response):
        body = json.loads(response.body).get("Content", {}).get("Simple", {}).get("Body", {})
        return body.get("Text", {}).get("Data"), body.get("Html", {}).get("Data")

    def no_bodies(response):
        return None, None

    def keeping(send, backend, bodies):
        def send_and_keep(self):
            result = send(self)  # one request at a time: the last message is this one
            message = backend(self).sent_messages[-1]
            message.text_part, message.html_part = bodies(self)
            message.timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            return result
        return send_and_keep

    v1, v2 = (lambda r: r.backend), (lambda r: r.sesv2_backend.core_backend)
    EmailResponse.send_email = keeping(EmailResponse.send_email, v1, v1_bodies)
    EmailResponse.send_raw_email = keeping(EmailResponse.send_raw_email, v1, no_bodies)
    SESV2Response.send_email = keeping(SESV2Response.send_email, v2, v2_bodies)


def sent_mails():
    """(backend, message, LocalStack's JSON of it) of every mail moto's SES sent."""
    from moto.ses.models import RawMessage, ses_backends

    for regions in list(ses_backends.values()):
        for region, backend in list(regions.items()):
            for message in backend.sent_messages:
                stamp = getattr(message, "timestamp", None)
                if isinstance(message, RawMessage):
                    shown = {"Id": message.id, "Region": region, "Source": message.source,
                             "RawData": message.raw_data, "Timestamp": stamp}
                elif hasattr(message, "subject"):
                    text = getattr(message, "text_part", message.body)
                    html = getattr(message, "html_part", None)
                    shown = {"Id": message.id, "Region": region,
                             "Destination": message.destinations, "Source": message.source,
                             "Subject": message.subject,
                             "Body": {"text_part": text, "html_part": html},
                             "Timestamp": stamp}
                else:
                    continue  # templated mails: LocalStack shows their template, not a body
                yield backend, message, shown


def recipients(shown):
    destination = shown.get("Destination") or {}
    return [a for key in ("ToAddresses", "CcAddresses", "BccAddresses")
            for a in destination.get(key, [])]


def with_ses_mails(app):
    """`app` that also answers GET and DELETE /_aws/ses (see the module docstring)."""

    def serve(environ, start_response):
        if environ.get("PATH_INFO") != SES_PATH:
            return app(environ, start_response)
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        wanted_id, source, to = (query.get(k) or None for k in ("id", "email", "to"))
        method = environ["REQUEST_METHOD"]
        if method == "GET":
            messages = [
                shown for _, _, shown in sent_mails()
                if wanted_id in (None, shown["Id"])
                and (source is None or shown["Source"].lower() == source.lower())
                and (to is None or to.lower() in (a.lower() for a in recipients(shown)))
            ]
            body = json.dumps({"messages": messages}).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if method == "DELETE":
            for backend, message, shown in list(sent_mails()):
                if wanted_id in (None, shown["Id"]):
                    backend.sent_messages.remove(message)
            start_response("204 No Content", [])
            return []
        start_response("405 Method Not Allowed", [("Allow", "GET, DELETE"),
                                                  ("Content-Length", "0")])
        return []

    return serve


def watch_parent(parent):
    """Exits the whole process once `parent` is no longer this process's parent."""

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)), help="port"
    )
    parser.add_argument(
        "--iam", action="store_true",
        help="authorise DynamoDB requests per table and SES sends per identity once IAM is "
             "enforced (see above)",
    )
    parser.add_argument(
        "--tls", nargs=2, metavar=("CERT", "KEY"),
        help="serve HTTPS with this PEM certificate chain and key (bench/bench.py's "
             "cold starts against DynamoDB over TLS)",
    )
    parser.add_argument(
        "--exit-with-parent", action="store_true",
        help="exit when the parent process is gone",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.exit_with_parent:
        watch_parent(os.getppid())
    if args.iam:
        authorise_dynamodb_per_table()
        authorise_ses_per_identity()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: sys.exit(0))

    keep_ses_bodies()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialized(with_ses_mails(app)),
        threaded=True,
        request_handler=MotoRequestHandler,
        ssl_context=tuple(args.tls) if args.tls else None,
    )


if __name__ == "__main__":
    main()
