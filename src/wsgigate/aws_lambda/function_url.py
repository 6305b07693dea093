"""Lambda Function URLs (payload format 2.0 on ``*.lambda-url.*.on.aws``).

Same shape as HTTP APIs, but ``rawPath`` keeps the client's percent-encoding (so ``%2F`` stays
in REQUEST_URI) and there is never a stage: SCRIPT_NAME is ``""`` unless ``base_path=`` says
otherwise. The answer has the HTTP API shape (``cookies`` for Set-Cookie).
"""

from __future__ import annotations

from wsgigate.aws_lambda import http_api
from wsgigate.aws_lambda import infer_function_url as infer
from wsgigate.aws_lambda.http_api import response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda import Options

name = "function_url"
__all__ = ["environ", "infer", "name", "response"]


def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
    return http_api.environ(event, options, True)
