"""Instructions per loop iteration: the history's figure that holds still on a shared machine.

Timed benchmarks of one commit move by tens of percent on a shared machine (whole processes run
fast or slow); the number of machine instructions an iteration executes does not. Each figure is
counted as the pull-request gate counts it (``tools/gate.py``): callgrind, inside one call of the
``loops`` benchmark only, in a fresh process of this environment's Python with a fixed hash seed.
Identical code gives the same count to within 0.1%, so a step on the dashboard is a change in the
code. Needs valgrind (``apt-get install -y valgrind``) and a Python with a symbol table (pyenv,
python.org, setup-python); without them the benchmarks are skipped (``NotImplementedError``).
"""

import shutil
import sys
import tempfile
from pathlib import Path

from . import loops

_TOOLS = Path(__file__).resolve().parent.parent / "tools"


def _spec(loop, mode):
    return f"loops:TailCallLoops.time_loop:{loop!r},{mode!r}"


def _gate():
    """The gate's module from this checkout's tools/ (the history runs from a checkout)."""
    if shutil.which("valgrind") is None:
        raise NotImplementedError("valgrind is not installed (apt-get install -y valgrind)")
    if not (_TOOLS / "gate.py").is_file():
        raise NotImplementedError("tools/gate.py not found beside asv_benchmarks/")
    if str(_TOOLS) not in sys.path:
        sys.path.insert(0, str(_TOOLS))
    import gate

    return gate


class Instructions:
    """Instructions per iteration of each tail-call loop, hot and slow (callgrind, deterministic)."""

    params = (loops.LOOPS, ["hot", "slow"])
    param_names = ["loop", "mode"]
    unit = "instructions"
    timeout = 600

    def setup_cache(self):
        """Count every loop once, in one valgrind process: ``{spec: instructions per call}``."""
        try:
            gate = _gate()
        except NotImplementedError as exc:
            return {"skipped": str(exc)}
        specs = [_spec(loop, mode) for loop in loops.LOOPS for mode in ("hot", "slow")]
        root = Path(tempfile.mkdtemp(prefix="cascade-asv-instructions-"))
        try:
            bench_dir = gate.prepare_bench_dir(_TOOLS.parent, root)

            def run_worker(args, prefix):
                cmd = [*prefix, sys.executable, "-s", "-P", str(bench_dir / "gate_worker.py"), *args]
                proc = gate.subprocess.run(cmd, cwd=bench_dir, capture_output=True, text=True,
                                           env=gate._clean_env())
                if proc.returncode != 0:
                    raise RuntimeError(f"gate_worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
                out = gate.json.loads(proc.stdout)
                failed = {s: r["error"] for s, r in out["results"].items() if "error" in r}
                if failed:
                    raise RuntimeError(f"benchmarks failed under callgrind: {failed}")
                return out

            return gate.count_instructions(run_worker, specs, 1, root / "callgrind.out")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def setup(self, counts, loop, mode):
        if "skipped" in counts:
            raise NotImplementedError(counts["skipped"])
        if _spec(loop, mode) not in counts:
            raise NotImplementedError(f"{loop} {mode} was not counted")

    def track_instructions(self, counts, loop, mode):
        """Instructions per iteration (one call of the loop benchmark, divided by its iterations)."""
        return counts[_spec(loop, mode)] / loops._n(loop, mode)
