#!/usr/bin/env bash
# Install what the benchmarks compare against, then run them: `bash scripts/bench.sh scgi`.
# Arguments go to `python -m benchmarks` (scenarios, --duration, --rounds, --write-docs...).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
# Front ends and load generator, plus uWSGI (its FastCGI and SCGI modes are sides) with
# Debian's Python 3 plugin. Not in scripts/test.sh: no test needs uWSGI.
ensure_apt lighttpd apache2 nginx-light wrk uwsgi-core uwsgi-plugin-python3
# flup, the scgi package, uvicorn, a2wsgi, ... (pyproject.toml's bench extra)
ensure_venv "bench"
exec .venv/bin/python -m benchmarks "$@"
