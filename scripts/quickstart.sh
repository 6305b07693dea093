#!/usr/bin/env bash
# Install wsgigate into .venv, run the example app through every gateway, then serve it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv ""
.venv/bin/wsgigate check examples/hello.py:app
exec .venv/bin/wsgigate run examples/hello.py:app --bind "${BIND:-127.0.0.1:8000}"
