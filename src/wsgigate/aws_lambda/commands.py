"""``wsgigate lambda invoke|runtime|package|deploy``: the command line of the Lambda gateway.

- ``invoke MODULE:APP --event FILE`` (or ``--source/--method/--path/--header/--data``) runs one
  event through :func:`wsgigate.aws_lambda.make_handler` in-process and prints the answer.
- ``runtime MODULE:APP [--stream]`` serves the Runtime API (:mod:`wsgigate.aws_lambda.runtime`).
- ``package MODULE:APP`` builds a deployment zip; ``deploy`` creates or updates the function and
  its Function URL with boto3 (:mod:`wsgigate.aws_lambda.deploy`).
"""

from __future__ import annotations

import sys

from wsgigate.errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lambda_command", metavar="SUBCOMMAND", required=True)

    invoke = sub.add_parser("invoke", help="run one event through the handler and print the answer")
    invoke.add_argument("app", metavar="MODULE:APP", help="the WSGI app, e.g. myapp:app")
    invoke.add_argument("--event", metavar="FILE", help="event JSON file ('-' for stdin)")
    invoke.add_argument(
        "--source",
        default="http_api",
        help="event source to build the event for, when no --event is given: rest, http_api, "
        "function_url, alb, alb_multi, lattice, lattice_v2, edge (default: http_api)",
    )
    invoke.add_argument("--method", default="GET", help="request method (default: GET)")
    invoke.add_argument("--path", default="/", help="request path with query (default: /)")
    invoke.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="request header"
    )
    invoke.add_argument("--data", help="request body")
    invoke.add_argument("--base-path", default="", help="path prefix of a custom domain mapping")
    invoke.add_argument(
        "--body", action="store_true", help="print the decoded response body only, not the JSON"
    )
    invoke.add_argument("--debug", action="store_true", help="tracebacks in 500 responses")

    runtime = sub.add_parser(
        "runtime", help="serve the Lambda Runtime API (container images, custom runtimes)"
    )
    runtime.add_argument("app", metavar="MODULE:APP", help="the WSGI app, e.g. myapp:app")
    runtime.add_argument(
        "--api", help="Runtime API HOST:PORT (default: $AWS_LAMBDA_RUNTIME_API, set by Lambda)"
    )
    runtime.add_argument(
        "--stream",
        action="store_true",
        help="stream responses (Function URL with InvokeMode RESPONSE_STREAM)",
    )
    runtime.add_argument("--base-path", default="", help="path prefix of a custom domain mapping")
    runtime.add_argument("--debug", action="store_true", help="tracebacks in 500 responses")

    package = sub.add_parser("package", help="build a deployment zip with the app and its deps")
    package.add_argument("app", metavar="MODULE:APP", help="the WSGI app, e.g. myapp:app")
    package.add_argument("--source-dir", default=".", help="directory holding the app (default: .)")
    package.add_argument(
        "--requirements", help="requirements file to install into the zip (pip install --target)"
    )
    package.add_argument(
        "--output", default="dist/lambda.zip", help="zip to write (default: dist/lambda.zip)"
    )
    package.add_argument(
        "--no-wsgigate", action="store_true", help="do not bundle wsgigate (it is in a layer)"
    )
    package.add_argument(
        "--no-compile",
        action="store_true",
        help="leave out bytecode (it speeds up cold starts on a runtime of this Python version)",
    )

    deploy = sub.add_parser("deploy", help="create or update the function and its Function URL")
    deploy.add_argument("--zip", default="dist/lambda.zip", help="deployment zip (from package)")
    deploy.add_argument("--name", required=True, help="function name")
    deploy.add_argument("--role", help="execution role ARN (needed to create the function)")
    deploy.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    deploy.add_argument("--runtime", default="python3.12", help="Lambda runtime identifier")
    deploy.add_argument("--memory", type=int, default=512, help="memory in MB (default: 512)")
    deploy.add_argument("--timeout", type=int, default=30, help="timeout in seconds (default: 30)")
    deploy.add_argument(
        "--no-url", action="store_true", help="do not create or update a Function URL"
    )
    deploy.add_argument(
        "--stream", action="store_true", help="Function URL with InvokeMode RESPONSE_STREAM"
    )


def run(args: argparse.Namespace) -> int:
    command = args.lambda_command
    if command == "invoke":
        return cmd_invoke(args)
    if command == "runtime":
        return cmd_runtime(args)
    if command == "package":
        return cmd_package(args)
    return cmd_deploy(args)


def _headers(raw: list[str]) -> list[tuple[str, str]]:
    headers = []
    for header in raw:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise ConfigurationError(f"--header {header!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    return headers


def build_event(args: argparse.Namespace) -> dict[str, Any]:
    """The event for ``invoke``: read from ``--event``, else built for ``--source``."""
    import json

    if args.event:
        try:
            if args.event == "-":
                text = sys.stdin.read()
            else:
                with open(args.event, encoding="utf-8") as file:
                    text = file.read()
            event: dict[str, Any] = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"--event {args.event}: {exc}") from None
        return event
    from wsgigate.aws_lambda.events import BUILDERS

    builder = BUILDERS.get(args.source)
    if builder is None:
        raise ConfigurationError(f"--source {args.source!r}: use one of {', '.join(BUILDERS)}")
    path, _, query = args.path.partition("?")
    body = args.data.encode() if args.data is not None else b""
    return builder(
        method=args.method.upper(), path=path, query=query, headers=_headers(args.header), body=body
    )


def cmd_invoke(args: argparse.Namespace) -> int:
    import json

    from wsgigate.aws_lambda import make_handler
    from wsgigate.loader import load_app

    app = load_app(args.app)
    event = build_event(args)
    handler = make_handler(app, base_path=args.base_path, debug=args.debug)
    answer = handler(event, None)
    if args.body:
        from wsgigate.aws_lambda.events import parse_response

        source = "edge" if "bodyEncoding" in answer else "rest"
        sys.stdout.buffer.write(parse_response(source, answer)[2])
        sys.stdout.flush()
    else:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    status = answer.get("statusCode", answer.get("status", 200))
    return 0 if int(status) < 500 else 1


def cmd_runtime(args: argparse.Namespace) -> int:
    import logging

    from wsgigate.aws_lambda.runtime import run as run_runtime
    from wsgigate.loader import load_app

    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s")
    app = load_app(args.app)
    run_runtime(app, api=args.api, stream=args.stream, base_path=args.base_path, debug=args.debug)
    return 0


def cmd_package(args: argparse.Namespace) -> int:
    from wsgigate.aws_lambda.deploy import package

    path = package(
        args.app,
        source_dir=args.source_dir,
        requirements=args.requirements,
        output=args.output,
        bundle_wsgigate=not args.no_wsgigate,
        precompile=not args.no_compile,
    )
    print(path)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from wsgigate.aws_lambda.deploy import deploy

    result = deploy(
        args.zip,
        name=args.name,
        role=args.role,
        region=args.region,
        runtime=args.runtime,
        memory=args.memory,
        timeout=args.timeout,
        url=not args.no_url,
        stream=args.stream,
    )
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0
