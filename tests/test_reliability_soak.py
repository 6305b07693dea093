"""A short soak in every test run (the 100,000-request one is scripts/soak.sh, figures in
docs/reliability.md): nginx -> `wsgigate fastcgi` and uvicorn -> wsgigate.asgi.WSGIApp under
wrk with GET, POST and streamed responses: no wrong answer, no socket error, RSS within 10%
of the warmed-up figure, no leaked threads or file descriptors."""

from __future__ import annotations

import pytest

from tests import soak
from tests.support import require_binary

pytestmark = pytest.mark.integration

REQUESTS = 4000


@pytest.mark.parametrize("target", ["fastcgi", "asgi"])
def test_short_soak(target: str) -> None:
    require_binary("wrk")
    if target == "fastcgi":
        require_binary("nginx", "/usr/sbin/nginx")
    run = soak.soak_fastcgi if target == "fastcgi" else soak.soak_asgi
    result = run(REQUESTS)
    assert result.requests >= REQUESTS, result.summary()
    assert not result.problems(), (result.problems(), result.summary())


def test_soak_notices_what_it_should() -> None:
    """The verdict is not blind: growth and leaks in the samples are reported."""
    result = soak.Result("x", requests=10, bad=1, errors=2, first_bad="500 boom")
    result.warm = {1: soak.Sample(1000, 10, 4, 5), 2: soak.Sample(1000, 10, 4, 5)}
    result.end = {1: soak.Sample(1101, 11, 4, 6), 2: soak.Sample(1100, 19, 13, 5)}
    problems = " | ".join(result.problems())
    assert "1 wrong answers, 2 socket errors (500 boom)" in problems
    assert "pid 1: RSS 1000 -> 1101 KiB" in problems and "pid 2: RSS" not in problems
    assert "pid 1: non-socket fds" in problems and "pid 1: threads 5 -> 6" in problems
    assert "pid 2: sockets 4 -> 13" in problems and "pid 2: non-socket" not in problems
    # a pool growing within its bound is not a leak; past it, it is
    result.max_threads = 6
    assert "threads" not in " | ".join(result.problems())
    result.end[1] = soak.Sample(1000, 10, 4, 7)
    assert "pid 1: threads 5 -> 7" in " | ".join(result.problems())
