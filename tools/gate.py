"""Performance gate: does HEAD run the gated loops slower than BASE, on this machine, right now?

Usage: ``python tools/gate.py BASE [--head REV] [--counter instructions|cpu|wall] [--factor F]
[--markdown PATH]`` (``nox -s gate -- BASE``; CI passes ``origin/main``).

How: each commit is checked out in a temporary ``git worktree``, installed (not editable) into its
own virtual environment, and the gated asv ``time_*`` benchmarks (the copies in this checkout's
``asv_benchmarks/``, so both sides run identical benchmark code) are timed in interleaved rounds:
round 1 runs BASE then HEAD, round 2 HEAD then BASE, and so on, each side in a fresh process. A round
keeps the fastest of ``--repeat`` calls of each benchmark. HEAD fails when, for any gated benchmark,
HEAD/BASE exceeds ``factor`` (see :func:`compare`).

The counter is, by default, the number of machine instructions one call of a benchmark executes
(``--counter instructions``): valgrind's callgrind counts them inside the benchmark call only, and
the count does not move when other processes share the cores, so one measurement per side is
enough and a small factor is safe. The gated loops never wait on anything real, so their cost is
the work they execute. ``--counter cpu`` (the benchmark thread's CPU time) and ``--counter wall``
time the calls instead, in interleaved rounds (BASE then HEAD, then HEAD then BASE, each side in a
fresh process): on a shared machine whole processes run fast or slow, and a 20% slowdown was missed
half the time at factor 1.10 (docs/benchmarks.md, "Why instructions, not time").

Exit status: 0 pass, 1 slower beyond the factor, 2 could not benchmark (bad revision, build or
install failure, a benchmark erroring or missing on HEAD) -- never a pass.
The factor was calibrated on a 2-core machine with ``tools/gate_calibrate.py`` (``nox -s
gate-calibrate``); see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

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
COUNTERS = ("instructions", "cpu", "wall")
# Tolerances: instruction counts of identical code agree to within 0.1%; timing needs room for noise.
DEFAULT_FACTOR = {"instructions": 1.04, "cpu": 1.10, "wall": 1.10}
DEFAULT_ROUNDS = {"instructions": 1, "cpu": 7, "wall": 7}
DEFAULT_REPEAT = 5
COUNT_CALLS = 1  # benchmark calls per instruction count (the count is exact; one call suffices)
REGION = "sys_call_tracing"  # the C function of ``sys.call_tracing``: the worker's counted region

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


def _clean_env() -> dict[str, str]:
    """The environment for a worker: no PYTHON* variables from outside, a fixed hash seed.

    A fixed seed makes set and dict layouts, and so instruction counts, the same on every run.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    return env


def _callgrind_total(path: Path) -> int:
    """The instruction total in one callgrind profile (its ``summary:`` or ``totals:`` line)."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise GateError(f"no instruction total in {path}")


def count_instructions(run_worker: Callable[[list[str], list[str]], dict], specs: list[str], calls: int,
                       out_file: Path) -> dict[str, float]:
    """Instructions per call of each benchmark in ``specs``, counted by callgrind in one worker process.

    ``run_worker(args, prefix)`` runs ``gate_worker.py args`` under the command ``prefix`` and returns
    its JSON; the profiles go to ``out_file.N`` and are removed. Used by the gate and by the asv
    history's instruction-count benchmarks (asv_benchmarks/instructions.py).
    """
    prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
              f"--toggle-collect={REGION}", f"--dump-after={REGION}", f"--callgrind-out-file={out_file}"]
    out = run_worker(["--count", str(calls), "--instrument", *specs], prefix)
    dumps = sorted(out_file.parent.glob(out_file.name + ".*"), key=lambda p: int(p.suffix[1:]))
    try:
        if len(dumps) != len(out["counted"]):
            raise GateError(f"callgrind wrote {len(dumps)} profiles for {len(out['counted'])} "
                            f"benchmarks; is {REGION} a symbol valgrind can see in this Python?")
        counts = {}
        for spec, dump in zip(out["counted"], dumps, strict=True):
            total = _callgrind_total(dump)
            if total == 0:
                raise GateError(f"callgrind counted nothing inside {REGION} for {_label(spec)}: "
                                "this Python's libpython has no symbol table (a stripped build such as "
                                "Debian's /usr/bin/python3); use a python.org, pyenv or setup-python build")
            counts[spec] = total / calls
        return counts
    finally:
        for path in [out_file, *dumps]:
            path.unlink(missing_ok=True)


class Side:
    """One commit: its worktree, its environment and its figures."""

    def __init__(self, name: str, rev: str, sha: str, root: Path, counter: str = "instructions") -> None:
        self.counter = counter
        self.name, self.rev, self.sha = name, rev, sha
        self.root = root
        self.src = root / f"src-{name}"
        self.env = root / f"env-{name}"
        self.python = self.env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        self.rounds: dict[str, list[float]] = {}
        self.skipped: dict[str, str] = {}

    def prepare(self, repo: Path, patch: Callable[[Path], None] | None = None) -> None:
        """Check the commit out, optionally ``patch`` the worktree (calibration), install it."""
        _run(["git", "-C", str(repo), "worktree", "add", "--detach", "--force", str(self.src), self.sha])
        if patch is not None:
            patch(self.src)
        _run([sys.executable, "-m", "venv", str(self.env)])
        _run([str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "--no-deps", str(self.src)])

    def reset(self) -> None:
        """Forget the figures (calibration measures the same environments again)."""
        self.rounds.clear()
        self.skipped.clear()

    def _worker(self, bench_dir: Path, args: list[str], prefix: list[str] | None = None) -> dict:
        cmd = [*(prefix or []), str(self.python), "-s", "-P", str(bench_dir / "gate_worker.py"), *args]
        proc = subprocess.run(cmd, cwd=bench_dir, capture_output=True, text=True, env=_clean_env())
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
        return out

    def measure(self, bench_dir: Path, specs: list[str], repeat: int) -> None:
        """One timed round: the fastest of ``repeat`` calls of each benchmark, on this side's clock."""
        out = self._worker(bench_dir, ["--repeat", str(repeat), *specs])
        for spec, res in out["results"].items():
            if "skipped" not in res:
                self.rounds.setdefault(spec, []).append(min(res[self.counter]))

    def count(self, bench_dir: Path, specs: list[str], calls: int, tag: str) -> None:
        """One counted round: instructions per benchmark call, from callgrind (see gate_worker)."""
        out_file = self.root / f"callgrind-{self.name}-{tag}.out"
        try:
            counts = count_instructions(lambda args, prefix: self._worker(bench_dir, args, prefix), specs, calls, out_file)
        except GateError as exc:
            raise GateError(f"{self.name}: {exc}") from None
        for spec, per_call in counts.items():
            self.rounds.setdefault(spec, []).append(per_call)

    def cleanup(self, repo: Path) -> None:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(self.src)],
                       capture_output=True)


def _fmt(value: float, counter: str) -> str:
    if counter == "instructions":
        return f"{value / 1e6:,.2f} M instr"
    return f"{value * 1e3:.2f} ms" if value < 10 else f"{value:.2f} s"


def compare(base: Side, head: Side, factor: float) -> tuple[int, list[tuple[str, ...]]]:
    """The verdict and one row per benchmark (label, gated, base, head, ratio, verdict).

    Instruction counts: the ratio is HEAD/BASE of the per-call counts (median over rounds, when
    there are several), and a gated benchmark is SLOWER when it exceeds ``factor``.

    Timings: two ratios, the median over rounds of HEAD/BASE within a round (the two sides ran back
    to back) and the best-round ratio ``min(HEAD) / min(BASE)``; SLOWER when both exceed ``factor``.
    """
    counter = head.counter
    rows: list[tuple[str, ...]] = []
    status = PASS
    compared = 0
    for spec, gated in BENCHMARKS:
        label = _label(spec)
        kind = "yes" if gated else "control"
        if spec in head.skipped:
            if gated:
                raise GateError(f"{label} is not available on {head.name}: {head.skipped[spec]}")
            continue
        if spec in base.skipped:
            rows.append((label, kind, "n/a", _fmt(statistics.median(head.rounds[spec]), counter), "-",
                         f"new (not on {base.name})"))
            continue
        b_rounds, h_rounds = base.rounds[spec], head.rounds[spec]
        if counter == "instructions":
            ratio = statistics.median(h_rounds) / statistics.median(b_rounds)
            slower, faster, shown = ratio > factor, ratio < 1 / factor, f"{ratio:.3f}x"
        else:
            paired = statistics.median(h / b for h, b in zip(h_rounds, b_rounds, strict=True))
            best = min(h_rounds) / min(b_rounds)
            slower = paired > factor and best > factor
            faster = paired < 1 / factor and best < 1 / factor
            shown = f"{paired:.3f}x paired, {best:.3f}x best round"
        if not gated:
            verdict = "control"
        elif slower:
            verdict = f"SLOWER (> {factor:.2f}x)"
            status = SLOWER
        elif faster:
            verdict = "faster"
        else:
            verdict = "ok"
        compared += gated
        rows.append((label, kind, _fmt(statistics.median(b_rounds), counter),
                     _fmt(statistics.median(h_rounds), counter), shown, verdict))
    if compared == 0:
        raise GateError("no gated benchmark could be compared")
    return status, rows


HEADER = ("benchmark", "gated", "base", "head", "head/base", "verdict")


def text_table(rows: list[tuple[str, ...]]) -> str:
    """The comparison as aligned plain text (the log)."""
    table = [HEADER, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_report(verdict: str, about: str, rows: list[tuple[str, ...]], note: str) -> str:
    """The comparison as markdown: for the job summary and the pull request's comment."""
    out = [f"### Performance gate: {verdict}", "", about, "",
           "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join([*out, "", note, ""])


def tolerance_note(counter: str, factor: float) -> str:
    """What the tolerance is and where its calibration is written down."""
    what = ("instructions per benchmark call, counted by valgrind's callgrind (the same on every run)"
            if counter == "instructions" else f"{counter} time, interleaved rounds")
    return (f"Tolerance: a gated benchmark fails above {factor:.2f}x ({what}); calibrated with "
            "`nox -s gate-calibrate`, see docs/benchmarks.md.")


def prepare_bench_dir(repo: Path, root: Path) -> Path:
    """A directory with this checkout's asv_benchmarks/ and the worker, and no cascade/."""
    bench_src = repo / "asv_benchmarks"
    worker = Path(__file__).resolve().parent / "gate_worker.py"
    if not bench_src.is_dir() or not worker.is_file():
        raise GateError("asv_benchmarks/ or tools/gate_worker.py missing")
    bench_dir = root / "bench"
    shutil.copytree(bench_src, bench_dir / "asv_benchmarks", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(worker, bench_dir / "gate_worker.py")
    return bench_dir


def check_counter(counter: str) -> None:
    """Instruction counts need valgrind: say how to get it."""
    if counter == "instructions" and shutil.which("valgrind") is None:
        raise GateError("valgrind is not installed (apt-get install -y valgrind), or use --counter cpu")


def measure_sides(base: Side, head: Side, bench_dir: Path, rounds: int, repeat: int, quiet: bool = False) -> None:
    """Fill both sides' figures: counted in parallel (counts ignore load), or timed in interleaved rounds."""
    specs = [s for s, _ in BENCHMARKS]
    for r in range(rounds):
        if head.counter == "instructions":
            if not quiet:
                print(f"gate: round {r + 1}/{rounds}: counting instructions (callgrind)", file=sys.stderr, flush=True)
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                jobs = [pool.submit(side.count, bench_dir, specs, COUNT_CALLS, str(r)) for side in (base, head)]
                for job in jobs:
                    job.result()
            continue
        for side in ((base, head) if r % 2 == 0 else (head, base)):
            if not quiet:
                print(f"gate: round {r + 1}/{rounds}: {side.name}", file=sys.stderr, flush=True)
            side.measure(bench_dir, specs, repeat)


def resolve(repo: Path, rev: str) -> str:
    """The commit a revision names, or GateError."""
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise GateError(f"unknown revision {rev!r} (in CI, check out with fetch-depth: 0)")
    return proc.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the revision to compare against (e.g. origin/main)")
    parser.add_argument("--head", default="HEAD", help="the revision under test (default HEAD)")
    parser.add_argument("--counter", choices=COUNTERS, default="instructions",
                        help="instructions (default, valgrind), cpu (thread CPU time) or wall (elapsed time)")
    parser.add_argument("--clock", dest="counter", choices=["cpu", "wall"], help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int,
                        help="rounds (default: 1 counting instructions, 7 interleaved rounds timing)")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"timed calls per benchmark per round, the fastest kept (default {DEFAULT_REPEAT})")
    parser.add_argument("--factor", type=float,
                        help="fail when HEAD/BASE exceeds this (default: 1.04 counting instructions, 1.10 timing)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw per-round figures here")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the verdict and table as markdown here (pull-request comment, job summary)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary worktrees and environments")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else DEFAULT_ROUNDS[args.counter]
    factor = args.factor if args.factor is not None else DEFAULT_FACTOR[args.counter]
    if rounds < 1 or args.repeat < 1 or factor <= 1:
        parser.error("--rounds and --repeat must be >= 1 and --factor > 1")

    started = time.perf_counter()
    try:
        check_counter(args.counter)
        repo = Path(_run(["git", "rev-parse", "--show-toplevel"]).stdout.strip())
        shas = {rev: resolve(repo, rev) for rev in (args.base, args.head)}
    except GateError as exc:
        return _report_error(exc, args.markdown)

    root = Path(tempfile.mkdtemp(prefix="cascade-gate-"))
    base = Side("base", args.base, shas[args.base], root, args.counter)
    head = Side("head", args.head, shas[args.head], root, args.counter)
    try:
        bench_dir = prepare_bench_dir(repo, root)
        for side in (base, head):
            print(f"gate: installing {side.name} = {side.rev} ({side.sha[:10]})", file=sys.stderr, flush=True)
            side.prepare(repo)
        measure_sides(base, head, bench_dir, rounds, args.repeat)
        status, rows = compare(base, head, factor)
        if args.json:
            Path(args.json).write_text(json.dumps({
                "base": {"rev": base.rev, "sha": base.sha, "rounds": base.rounds, "skipped": base.skipped},
                "head": {"rev": head.rev, "sha": head.sha, "rounds": head.rounds, "skipped": head.skipped},
                "factor": factor, "counter": args.counter, "status": status,
            }, indent=2))
    except GateError as exc:
        return _report_error(exc, args.markdown)
    finally:
        if not args.keep:
            for side in (base, head):
                side.cleanup(repo)
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run(["git", "-C", str(repo), "worktree", "prune"], capture_output=True)
    how = ("instructions per call (callgrind)" if args.counter == "instructions" else
           f"{rounds} interleaved rounds, best of {args.repeat} calls per round, {args.counter} time")
    about = f"{head.rev} ({head.sha[:10]}) vs {base.rev} ({base.sha[:10]}); {how}"
    verdict = "PASS" if status == PASS else f"FAIL: slower than {base.rev} by more than {factor:.2f}x"
    print(f"Performance gate: {about}")
    print(text_table(rows))
    print(f"{verdict} ({time.perf_counter() - started:.0f}s)")
    if args.markdown:
        Path(args.markdown).write_text(markdown_report(verdict, about, rows, tolerance_note(args.counter, factor)))
    return status


def _report_error(exc: GateError, markdown: str | None) -> int:
    print(f"gate: ERROR: {exc}", file=sys.stderr)
    if markdown:
        Path(markdown).write_text(markdown_report("ERROR (could not benchmark)", f"```\n{exc}\n```", [], ""))
    return ERROR


if __name__ == "__main__":
    sys.exit(main())
