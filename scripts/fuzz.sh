#!/usr/bin/env bash
# Coverage-guided fuzzing (atheris) of the FastCGI and SCGI codecs and of the Lambda event ->
# environ path; not part of scripts/test.sh. See docs/reliability.md.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]      # default: 60 s each, every target
#
# TARGET is fastcgi, scgi or lambda (fuzz/fuzz_TARGET.py). The corpus grows in fuzz/corpus/TARGET
# (not committed); a crash is written to fuzz/crashes/TARGET-*: copy it into
# fuzz/regressions/TARGET/ and tests/test_reliability_codecs.py replays it in every test run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fastcgi scgi lambda)
python="${FUZZ_PYTHON:-python3}"
if ! "$python" -c 'import atheris, wsgigate' 2>/dev/null; then
    source scripts/lib.sh
    ensure_venv "test,fuzz"
    python=.venv/bin/python
fi
mkdir -p fuzz/crashes
status=0
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    echo "==> fuzz $target for ${seconds}s"
    "$python" "fuzz/fuzz_$target.py" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="fuzz/crashes/$target-" "fuzz/corpus/$target" ||
        status=$?
done
exit "$status"
