"""Performance gate: does HEAD run the gated loops slower than BASE, on this machine, right now?

Usage: ``python tools/gate.py BASE [--head REV] [--rounds N] [--repeat R] [--factor F]``
(``nox -s gate -- BASE``; CI passes ``origin/main``).

How: each commit is checked out in a temporary ``git worktree``, installed (not editable) into its
own virtual environment, and the gated asv ``time_*`` benchmarks (the copies in this checkout's
``asv_benchmarks/``, so both sides run identical benchmark code) are timed in interleaved rounds:
round 1 runs BASE then HEAD, round 2 HEAD then BASE, and so on, each side in a fresh process. A round
keeps the fastest of ``--repeat`` calls of each benchmark. HEAD fails when, for any gated benchmark,
the median over rounds of the within-round ratio HEAD/BASE exceeds ``factor`` and the best-round
ratio ``min(HEAD) / min(BASE)`` does too (see :func:`compare` and docs/benchmarks.md for why both).

The clock is the benchmark thread's CPU time by default (``--clock cpu``): the gated loops never
wait on anything real, so CPU time is their cost, and it is far less disturbed than elapsed time
when other processes share the 2 cores. ``--clock wall`` uses elapsed time instead.

Exit status: 0 pass, 1 slower beyond the factor, 2 could not benchmark (bad revision, build or
install failure, a benchmark erroring or missing on HEAD) -- never a pass.
The factor was calibrated on a 2-core machine; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (benchmark, gated): the asv time_* benchmarks compared; the raw-asyncio baseline is a control that
# shows how noisy the machine was, never a reason to fail.
BENCHMARKS: list[tuple[str, bool]] = [
    ("loops:TailCallLoops.time_loop:'countdown','hot'", True),
    ("loops:TailCallLoops.time_loop:'chain11','hot'", True),
    ("loops:TailCallLoops.time_loop:'fork3','hot'", True),
    ("loops:TailCallLoops.time_loop:'countdown','slow'", True),
    ("agents:ConcurrentAgents.time_agents:1000,'hot'", True),
    ("loops:TailCallLoops.time_loop:'countdown','baseline'", False),
]
DEFAULT_FACTOR = 1.10
DEFAULT_ROUNDS = 7
DEFAULT_REPEAT = 5

PASS, SLOWER, ERROR = 0, 1, 2


class GateError(Exception):
    """Benchmarking could not be done: the gate's answer is 'error', not 'pass'."""


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise GateError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return proc


def _label(spec: str) -> str:
    module, qual, params = spec.split(":")
    return f"{qual.split('.')[0]}({params.replace(chr(39), '')})"


class Side:
    """One commit: its worktree, its environment and its timings."""

    def __init__(self, name: str, rev: str, sha: str, root: Path, clock: str = "cpu") -> None:
        self.clock = clock
        self.name, self.rev, self.sha = name, rev, sha
        self.src = root / f"src-{name}"
        self.env = root / f"env-{name}"
        self.python = self.env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        self.rounds: dict[str, list[float]] = {}
        self.skipped: dict[str, str] = {}

    def prepare(self, repo: Path) -> None:
        _run(["git", "-C", str(repo), "worktree", "add", "--detach", "--force", str(self.src), self.sha])
        _run([sys.executable, "-m", "venv", str(self.env)])
        _run([str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "--no-deps", str(self.src)])

    def measure(self, bench_dir: Path, specs: list[str], repeat: int) -> None:
        proc = subprocess.run(
            [str(self.python), "-I", str(bench_dir / "gate_worker.py"), "--repeat", str(repeat), *specs],
            cwd=bench_dir, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise GateError(f"{self.name} ({self.rev}): worker failed ({proc.returncode})\n{proc.stderr[-4000:]}")
        try:
            out = json.loads(proc.stdout)
        except ValueError:
            raise GateError(f"{self.name}: worker printed no result\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}") from None
        imported = Path(out["cascade"]).resolve()
        if self.env.resolve() not in imported.parents:
            raise GateError(f"{self.name}: measured the wrong cascade ({imported}), not the one in {self.env}")
        for spec, res in out["results"].items():
            if "error" in res:
                raise GateError(f"{self.name} ({self.rev}): {_label(spec)} failed:\n{res['error']}")
            if "skipped" in res:
                self.skipped[spec] = res["skipped"]
            else:
                self.rounds.setdefault(spec, []).append(min(res[self.clock]))

    def cleanup(self, repo: Path) -> None:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(self.src)],
                       capture_output=True)


def _fmt_time(s: float) -> str:
    return f"{s * 1e3:8.2f} ms" if s < 10 else f"{s:8.2f} s "


def compare(base: Side, head: Side, factor: float) -> tuple[int, str]:
    """The verdict and the comparison table.

    Two ratios per benchmark: the median over rounds of HEAD/BASE within a round (the two sides ran
    back to back, so slow drifts in the machine's load cancel), and the best-round ratio
    ``min(HEAD) / min(BASE)`` (the least disturbed figure of each side). A benchmark is SLOWER when
    both exceed ``factor``: a real slowdown moves both, while a burst of load from other processes
    inflates some rounds (moving the median) but rarely the best round of both sides.
    """
    rows = [("benchmark", "gated", f"{base.name} median", f"{head.name} median", "paired ratio",
             "best-round ratio", "verdict")]
    status = PASS
    compared = 0
    for spec, gated in BENCHMARKS:
        label = _label(spec)
        if spec in head.skipped:
            if gated:
                raise GateError(f"{label} is not available on {head.name}: {head.skipped[spec]}")
            continue
        if spec in base.skipped:
            rows.append((label, "yes" if gated else "control", "n/a", _fmt_time(statistics.median(head.rounds[spec])),
                         "-", "-", f"new (not on {base.name})"))
            continue
        b_rounds, h_rounds = base.rounds[spec], head.rounds[spec]
        paired = statistics.median(h / b for h, b in zip(h_rounds, b_rounds, strict=True))
        best = min(h_rounds) / min(b_rounds)
        if not gated:
            verdict = "control"
        elif paired > factor and best > factor:
            verdict = f"SLOWER (> {factor:.2f}x)"
            status = SLOWER
        elif paired < 1 / factor and best < 1 / factor:
            verdict = "faster"
        else:
            verdict = "ok"
        compared += gated
        rows.append((label, "yes" if gated else "control", _fmt_time(statistics.median(b_rounds)),
                     _fmt_time(statistics.median(h_rounds)), f"{paired:.3f}x", f"{best:.3f}x", verdict))
    if compared == 0:
        raise GateError("no gated benchmark could be compared")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return status, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the revision to compare against (e.g. origin/main)")
    parser.add_argument("--head", default="HEAD", help="the revision under test (default HEAD)")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help=f"interleaved rounds (default {DEFAULT_ROUNDS})")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"timed calls per benchmark per round, the fastest kept (default {DEFAULT_REPEAT})")
    parser.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                        help=f"fail when HEAD/BASE exceeds this (default {DEFAULT_FACTOR})")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="thread CPU time (default) or elapsed time")
    parser.add_argument("--json", metavar="PATH", help="also write the raw per-round figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary worktrees and environments")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.repeat < 1 or args.factor <= 1:
        parser.error("--rounds and --repeat must be >= 1 and --factor > 1")

    started = time.perf_counter()
    try:
        repo = Path(_run(["git", "rev-parse", "--show-toplevel"]).stdout.strip())
        bench_src = repo / "asv_benchmarks"
        worker = Path(__file__).resolve().parent / "gate_worker.py"
        if not bench_src.is_dir() or not worker.is_file():
            raise GateError("asv_benchmarks/ or tools/gate_worker.py missing")
        shas = {}
        for rev in (args.base, args.head):
            proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise GateError(f"unknown revision {rev!r} (in CI, check out with fetch-depth: 0)")
            shas[rev] = proc.stdout.strip()
    except GateError as exc:
        print(f"gate: ERROR: {exc}", file=sys.stderr)
        return ERROR

    root = Path(tempfile.mkdtemp(prefix="cascade-gate-"))
    base = Side("base", args.base, shas[args.base], root, args.clock)
    head = Side("head", args.head, shas[args.head], root, args.clock)
    try:
        bench_dir = root / "bench"
        shutil.copytree(bench_src, bench_dir / "asv_benchmarks",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy2(worker, bench_dir / "gate_worker.py")
        for side in (base, head):
            print(f"gate: installing {side.name} = {side.rev} ({side.sha[:10]})", file=sys.stderr, flush=True)
            side.prepare(repo)
        specs = [s for s, _ in BENCHMARKS]
        for r in range(args.rounds):
            order = (base, head) if r % 2 == 0 else (head, base)
            for side in order:
                print(f"gate: round {r + 1}/{args.rounds}: {side.name}", file=sys.stderr, flush=True)
                side.measure(bench_dir, specs, args.repeat)
        status, table = compare(base, head, args.factor)
        if args.json:
            Path(args.json).write_text(json.dumps({
                "base": {"rev": base.rev, "sha": base.sha, "rounds": base.rounds, "skipped": base.skipped},
                "head": {"rev": head.rev, "sha": head.sha, "rounds": head.rounds, "skipped": head.skipped},
                "factor": args.factor, "clock": args.clock, "status": status,
            }, indent=2))
    except GateError as exc:
        print(f"gate: ERROR: {exc}", file=sys.stderr)
        return ERROR
    finally:
        if not args.keep:
            for side in (base, head):
                side.cleanup(repo)
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run(["git", "-C", str(repo), "worktree", "prune"], capture_output=True)
    print(f"Performance gate: {head.rev} ({head.sha[:10]}) vs {base.rev} ({base.sha[:10]}); "
          f"{args.rounds} interleaved rounds, best of {args.repeat} calls per round, median over rounds, "
          f"{args.clock} time")
    print(table)
    verdict = "PASS" if status == PASS else f"FAIL: slower than {base.rev} by more than {args.factor:.2f}x"
    print(f"{verdict} ({time.perf_counter() - started:.0f}s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
