"""Command line: ``wsgigate <command> MODULE:APP [options]``.

Each command is declared once in :data:`COMMANDS` (its options and the function that runs it);
the argument parser and the configuration reference in the docs are both built from it.
Errors in what the user asked for (a bad app spec, a bad bind) end with one line on stderr
and exit status 2.
"""

from __future__ import annotations

import sys

from wsgigate import __version__
from wsgigate.errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from wsgiref.types import WSGIApplication

EXIT_USAGE = 2


def _load(spec: str) -> WSGIApplication:
    from wsgigate.loader import load_app

    return load_app(spec)


def _setup_logging(level: str) -> None:
    import logging

    logging.basicConfig(
        level=level.upper(),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from wsgigate.host import detect, serve

    if detect() == "cgi":
        from wsgigate.cgi import drop_httpoxy

        drop_httpoxy()  # before the app's own imports can read the environment
    app = _load(args.app)
    _setup_logging(args.log_level)
    serve(app, protocol=args.protocol, bind=args.bind, debug=args.debug)
    return 0


def cmd_cgi(args: argparse.Namespace) -> int:
    if args.forwarded_allow_ips is not None:
        from wsgigate.forwarded import forwarded_scheme_from_option

        forwarded_scheme_from_option(args.forwarded_allow_ips)  # a wrong value: exit 2, now
    return _cgi(args.app, debug=args.debug, forwarded_allow_ips=args.forwarded_allow_ips)


def _cgi(spec: str, *, debug: bool, forwarded_allow_ips: str | None = None) -> int:
    from wsgigate import cgi

    cgi.drop_httpoxy()  # before the app's own imports can read the environment
    outcome = cgi.run(_load(spec), debug=debug, forwarded_allow_ips=forwarded_allow_ips)
    return 0 if outcome.complete else 1


def cmd_check(args: argparse.Namespace) -> int:
    from wsgigate.check import ProbeRequest, check, format_table

    app = _load(args.app)
    path, _, query = args.path.partition("?")
    headers = []
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep:
            raise ConfigurationError(f"--header {header!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    body = args.data.encode() if args.data is not None else b""
    rows = check(app, ProbeRequest(args.method, path, query, headers, body))
    print(format_table(rows))
    return 0 if all(row.ok for row in rows) else 1


def _app_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "app", metavar="MODULE:APP", help="the WSGI app, e.g. myapp:app or app.py:app"
    )


def _debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show tracebacks to clients in 500 responses (never in production)",
    )


def _logging_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="least severe level logged to stderr (default: info)",
    )


def args_run(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    parser.add_argument(
        "--bind",
        help="for the development server: HOST:PORT (default 127.0.0.1:8000); "
        "for an inherited socket: override it",
    )
    parser.add_argument(
        "--protocol",
        default="fastcgi",
        choices=["fastcgi", "scgi"],
        help="protocol spoken on an inherited socket (fd 0, systemd) (default: fastcgi)",
    )
    _debug_option(parser)
    _logging_option(parser)


def args_cgi(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    _debug_option(parser)
    from wsgigate.forwarded import add_forwarded_argument

    add_forwarded_argument(parser)


def args_check(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    parser.add_argument("--method", default="GET", help="request method (default: GET)")
    parser.add_argument("--path", default="/", help="request path with query (default: /)")
    parser.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="request header"
    )
    parser.add_argument("--data", help="request body")


def args_asgi(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    parser.add_argument(
        "--server", default="uvicorn", choices=["uvicorn", "hypercorn"], help="(default: uvicorn)"
    )
    parser.add_argument(
        "--bind", default="127.0.0.1:8000", help="HOST:PORT, [::1]:PORT or unix:/path"
    )
    parser.add_argument(
        "--threads", type=int, default=16, help="worker threads running the app (default: 16)"
    )
    parser.add_argument(
        "--root-path", default="", help="mount point, given to the app as SCRIPT_NAME"
    )
    _debug_option(parser)
    _logging_option(parser)


def cmd_asgi(args: argparse.Namespace) -> int:
    from wsgigate.asgi.serve import serve

    app = _load(args.app)
    _setup_logging(args.log_level)
    serve(
        app,
        server=args.server,
        bind=args.bind,
        threads=args.threads,
        root_path=args.root_path,
        debug=args.debug,
        log_level=args.log_level,
    )
    return 0


def args_lambda(parser: argparse.ArgumentParser) -> None:
    from wsgigate.aws_lambda.commands import add_arguments

    add_arguments(parser)


def cmd_lambda(args: argparse.Namespace) -> int:
    from wsgigate.aws_lambda.commands import run

    return run(args)


def args_fastcgi_request(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="PATH", help="request path and query, e.g. /health?x=1")
    parser.add_argument(
        "--connect", required=True, metavar="ADDRESS", help="HOST:PORT, [::1]:PORT or unix:/path"
    )
    parser.add_argument("--method", default="GET", help="request method (default: GET)")
    parser.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="request header"
    )
    parser.add_argument("--data", help="request body")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="add/replace a param"
    )
    parser.add_argument("--script-name", default="", help="SCRIPT_NAME of the app's mount point")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default: 10)")
    parser.add_argument("-i", "--include", action="store_true", help="print the response head")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")


def cmd_fastcgi_request(args: argparse.Namespace) -> int:
    from wsgigate.fastcgi.client import main

    return main(args)


def args_fastcgi(parser: argparse.ArgumentParser) -> None:
    from wsgigate.fastcgi.server import add_arguments

    add_arguments(parser)


def cmd_fastcgi(args: argparse.Namespace) -> int:
    from wsgigate.fastcgi.server import main

    return main(args)


def args_scgi(parser: argparse.ArgumentParser) -> None:
    from wsgigate.scgi.server import add_arguments

    add_arguments(parser)


def cmd_scgi(args: argparse.Namespace) -> int:
    from wsgigate.scgi.server import main

    return main(args)


# name -> (help, add_arguments, run). Gateways add their commands here.
COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {
    "run": (
        "serve the app the way this process was started (CGI, socket, Lambda, dev HTTP)",
        args_run,
        cmd_run,
    ),
    "cgi": ("answer one CGI request (RFC 3875) from the environment and stdin", args_cgi, cmd_cgi),
    "check": ("run the app through every gateway and print a table", args_check, cmd_check),
    "fastcgi": (
        "serve the app over FastCGI (nginx, Apache, lighttpd): workers x threads",
        args_fastcgi,
        cmd_fastcgi,
    ),
    "scgi": (
        "serve the app over SCGI (nginx, Apache mod_proxy_scgi, lighttpd): workers x threads",
        args_scgi,
        cmd_scgi,
    ),
    "fastcgi-request": (
        "send one request to a FastCGI server (health check); exit 0 on 2xx/3xx",
        args_fastcgi_request,
        cmd_fastcgi_request,
    ),
    "asgi": ("serve the app from an ASGI server (uvicorn, hypercorn)", args_asgi, cmd_asgi),
    "lambda": (
        "AWS Lambda: invoke an event locally, serve the Runtime API, package, deploy",
        args_lambda,
        cmd_lambda,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="wsgigate",
        description="Run one WSGI application on CGI, FastCGI, SCGI, AWS Lambda and ASGI servers.",
    )
    parser.add_argument("--version", action="version", version=f"wsgigate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "cgi" and argv[1][:1] != "-":
        # A CGI server starts `wsgigate cgi MODULE:APP` for every request: no argparse and no
        # other command's imports, which cost a request more than the interpreter's start-up
        # (docs/benchmarks.md, cgi-spawn).
        args = None
    else:
        args = build_parser().parse_args(argv)
    try:
        status: int = _cgi(argv[1], debug=False) if args is None else args.run(args)
    except ConfigurationError as exc:
        print(f"wsgigate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return status
