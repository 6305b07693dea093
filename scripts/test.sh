#!/usr/bin/env bash
# Install everything the tests need, then run lint, type checks and the whole test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k cgi`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
# Front ends and tools the integration tests start for real.
ensure_apt lighttpd apache2 nginx-light wrk spawn-fcgi libfcgi-bin libapache2-mod-fcgid curl systemd
# docs: mkdocs-material (tests/test_docs.py builds the site --strict), matplotlib (the plot)
ensure_venv "test,docs"
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
PYTHONDEVMODE=1 .venv/bin/python -W error::ResourceWarning -m pytest "$@"
