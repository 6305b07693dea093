"""``python -m benchmarks [scenario ...] [--duration S] [--rounds N] [--write-docs] [--plot]``."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time

from benchmarks import SCENARIOS, Options, load
from benchmarks.harness import BenchmarkError, interpreter, loadavg, machine_facts
from benchmarks.report import table, write_docs


def parse(argv: list[str]) -> tuple[list[str], Options, bool]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run wsgigate's benchmarks against their competitors, in the same run.",
    )
    parser.add_argument(
        "scenarios", nargs="*", metavar="scenario", help=f"any of: {', '.join(SCENARIOS)} (all)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (10)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; the median is shown (3)"
    )
    parser.add_argument("--connections", type=int, default=4, help="wrk -c (4)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (2)")
    parser.add_argument(
        "--python",
        default="",
        help="interpreter for the processes a scenario starts (default: this one)",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="drive every side of a round at the same time, each against its own server "
        "(server scenarios): load from outside then hits every side alike",
    )
    parser.add_argument(
        "--compare",
        default="",
        metavar="PYTHON",
        help="another interpreter whose wsgigate (an older commit, another kind of install) "
        "runs as one more side (cgi)",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="write the figures and this command into docs/benchmarks.md",
    )
    parser.add_argument(
        "--plot",
        action="store_true",
        help="redraw docs/img/benchmarks.png (matplotlib) from the figures in docs/benchmarks.md; "
        "alone it runs no scenario; --write-docs redraws it too",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-round progress")
    args = parser.parse_args(argv)
    for name in args.scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be >= 1 and --duration > 0")
    options = Options(
        duration=args.duration,
        rounds=args.rounds,
        connections=args.connections,
        threads=args.threads,
        python=args.python,
        together=args.together,
        compare=args.compare,
        verbose=not args.quiet,
    )
    return args.scenarios or list(SCENARIOS), options, args.write_docs


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind, so that every scenario stops the servers it started


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminate)
    if [arg for arg in argv if arg not in ("-q", "--quiet")] == ["--plot"]:
        return _plot()  # no scenario named: redraw from the recorded figures only
    names, options, docs = parse(argv)
    command = shlex.join([sys.executable, "-m", "benchmarks", *argv])
    failed = 0
    for name in names:
        try:
            scenario = load(name)
        except ImportError as exc:
            print(f"{name}: cannot run: {exc} (pip install -e '.[bench]')", file=sys.stderr)
            failed += 1
            continue
        print(f"== {name}: {scenario.title}", flush=True)
        before = loadavg()
        started = time.time()
        try:
            result = scenario.run(options)
        except BenchmarkError as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        after = loadavg()
        print("\n".join(table(result)))
        print(f"load average before: {before}, after: {after}\n", flush=True)
        if docs:
            facts = machine_facts(interpreter(options.python))
            facts["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
            facts["load average (1, 5, 15 min)"] = f"before {before}; after {after}"
            write_docs(scenario, result, command, facts)
            print(f"wrote the {name} section of docs/benchmarks.md")
    if (docs and len(names) > failed) or "--plot" in argv:
        _plot()
    return 1 if failed else 0


def _plot() -> int:
    from benchmarks.plot import draw, recorded

    try:
        path = draw(recorded())
    except ImportError as exc:
        print(f"--plot: cannot draw: {exc} (pip install -e '.[docs]')", file=sys.stderr)
        return 1
    print(f"drew {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
