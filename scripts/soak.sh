#!/usr/bin/env bash
# Soak: 100,000 requests (GET, POST, streamed) through nginx -> `wsgigate fastcgi` and through
# uvicorn -> wsgigate.asgi.WSGIApp, driven by wrk; fails on any wrong answer or socket error,
# RSS growth over 10% after the warm-up, or leaked threads/file descriptors (read from /proc).
# Not part of scripts/test.sh (a short soak is); see docs/reliability.md for the figures.
#
#   bash scripts/soak.sh [--requests N] [--target fastcgi|asgi|all] [--connections C]
set -euo pipefail
cd "$(dirname "$0")/.."
python="${SOAK_PYTHON:-python3}"
if ! "$python" -c 'import wsgigate, uvicorn' 2>/dev/null; then
    source scripts/lib.sh
    ensure_apt nginx-light wrk
    ensure_venv "test"
    python=.venv/bin/python
fi
exec "$python" -m tests.soak "$@"
