"""One gate measurement in one environment: run a fixed list of asv ``time_*`` benchmarks.

Run by ``tools/gate.py`` from a directory holding a copy of ``asv_benchmarks/`` (and no
``cascade/``), so the ``cascade`` imported is the one installed in that environment. A BENCH is
``module:Class.method:param,param`` (params as Python literals). Two modes:

- ``ENV_PYTHON -I gate_worker.py --repeat R BENCH...`` times each benchmark: per benchmark, ``cpu``
  and ``wall`` seconds (one per timed call: this thread's CPU time and elapsed time);
- ``valgrind --tool=callgrind ... ENV_PYTHON -I gate_worker.py --count K BENCH...`` sets every
  benchmark up, then runs each one K times inside its own ``sys.call_tracing`` call. Callgrind,
  told to collect only inside that C function and to dump when it returns, writes one profile per
  benchmark, in the order listed under ``counted``: instructions executed by K calls and nothing
  else (no interpreter start-up, no imports, no setup).

Prints one JSON object on stdout: ``cascade`` (the imported file), per benchmark the figures above
or ``skipped`` (setup raised NotImplementedError) or ``error``.
"""

from __future__ import annotations

import argparse
import ast
import gc
import importlib
import json
import os
import subprocess
import sys
import time
import traceback


def _parse(spec: str) -> tuple[str, str, str, tuple]:
    module, qual, params = (spec.split(":") + [""])[:3]
    cls, _, method = qual.rpartition(".")
    values = tuple(ast.literal_eval(p) for p in params.split(",")) if params else ()
    return module, cls, method, values


def measure(spec: str, repeat: int) -> dict:
    module_name, cls_name, method, params = _parse(spec)
    module = importlib.import_module(f"asv_benchmarks.{module_name}")
    obj = getattr(module, cls_name)() if cls_name else module
    setup = getattr(obj, "setup", None)
    teardown = getattr(obj, "teardown", None)
    try:
        if setup is not None:
            setup(*params)
    except NotImplementedError as exc:
        return {"skipped": str(exc) or "NotImplementedError"}
    try:
        fn = getattr(obj, method)
        fn(*params)  # warm-up call
        cpu, wall = [], []
        for _ in range(repeat):
            gc.collect()
            gc.disable()  # as asv's timer does
            try:
                t0, c0 = time.perf_counter(), time.thread_time()
                fn(*params)
                c1, t1 = time.thread_time(), time.perf_counter()
            finally:
                gc.enable()
            cpu.append(c1 - c0)
            wall.append(t1 - t0)
        return {"cpu": cpu, "wall": wall}
    finally:
        if teardown is not None:
            teardown(*params)


def _instrumentation(state: str) -> None:
    """Switch callgrind's instrumentation of this process on or off (``callgrind_control -i``).

    Valgrind started with ``--instr-atstart=no`` runs start-up and imports several times faster; it
    reads the command while this process runs Python, so poll rather than block.
    """
    proc = subprocess.Popen(["callgrind_control", "-i", state, str(os.getpid())],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while proc.poll() is None:
        sum(range(100))
    reply = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0 or "OK" not in reply:
        raise RuntimeError(f"callgrind_control -i {state} failed: {reply.strip()}")


def count(specs: list[str], calls: int, instrument: bool = False) -> dict:
    """Per benchmark: set up, warm up, run ``calls`` times inside ``sys.call_tracing``, tear down.

    The collector stays on, as in real use, with everything made before the counted region frozen
    (``gc.freeze``), so a collection scans only what the benchmark itself allocates. ``instrument``:
    valgrind runs the interpreter's start-up and the imports uninstrumented (``_instrumentation``).
    """
    out: dict = {"results": {}, "counted": []}
    if instrument:
        # Once, after the imports: switching it off and on again between regions confuses
        # callgrind's call tracking (totals wrapped around below zero when tried).
        _instrumentation("on")
    for spec in specs:
        module_name, cls_name, method, params = _parse(spec)
        try:
            obj = getattr(importlib.import_module(f"asv_benchmarks.{module_name}"), cls_name)()
            try:
                obj.setup(*params)
            except NotImplementedError as exc:
                out["results"][spec] = {"skipped": str(exc) or "NotImplementedError"}
                continue
            fn = getattr(obj, method)
            fn(*params)  # warm-up call (hot plans cached, as in the timed mode)
        except Exception:
            traceback.print_exc()
            out["results"][spec] = {"error": traceback.format_exc(limit=3)}
            continue

        def run(fn=fn, params=params) -> None:
            for _ in range(calls):
                fn(*params)

        gc.collect()
        gc.freeze()
        try:
            sys.call_tracing(run, ())
            out["results"][spec] = {"calls": calls}
        except Exception:
            traceback.print_exc()
            out["results"][spec] = {"error": traceback.format_exc(limit=3)}
        finally:
            gc.unfreeze()
            out["counted"].append(spec)  # callgrind dumped a profile for this call, failed or not
            teardown = getattr(obj, "teardown", None)
            if teardown is not None:
                teardown(*params)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--count", type=int, metavar="K", help="run each benchmark K times for an instruction counter")
    parser.add_argument("--instrument", action="store_true",
                        help="with --count under callgrind --instr-atstart=no: instrument after the imports")
    parser.add_argument("benchmarks", nargs="+")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cascade

    if args.count is not None:
        out = count(args.benchmarks, args.count, args.instrument)
        out["cascade"] = os.path.abspath(cascade.__file__)
        json.dump(out, sys.stdout)
        return 0
    out = {"cascade": os.path.abspath(cascade.__file__), "results": {}}
    for spec in args.benchmarks:
        try:
            out["results"][spec] = measure(spec, args.repeat)
        except Exception:
            traceback.print_exc()
            out["results"][spec] = {"error": traceback.format_exc(limit=3)}
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
