"""moto's server with its requests serialized: the DynamoDB-compatible server of the
local scripts and tests.

`moto_server` serves each request on its own thread and its backends take no locks,
so `TransactWriteItems` is not isolated there: concurrent transactions on the same
items can both pass their conditions, and a cancelled one restores a copy of the
table taken before it started, erasing writes made in between. Real DynamoDB does
neither. This launcher runs the same WSGI application with one lock around every
request, so each request sees the effects of all earlier ones and none of a later
one, as in DynamoDB. Connections are still accepted and read on their own threads.

Usage: python scripts/moto_serial.py [-H HOST] [-p PORT]   (the options of moto_server)
"""

import argparse
import os
import signal
import sys
import threading

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)), help="port"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: sys.exit(0))

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
