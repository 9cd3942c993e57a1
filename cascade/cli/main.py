"""``cascade``: the command line (typer + rich).

Commands: ``run`` a workflow (rich progress on long runs), ``visualize`` it (DOT; PNG/SVG with
Graphviz), ``dry-run`` (its plan), govern running engines over MQTT (``pause``, ``resume``, ``limit``,
``clear``, ``status``, ``watch``), and ``bench`` (the headline throughput table). Commands that talk to
engines take ``--broker mqtt://host:port`` (default ``$CASCADE_BROKER`` or ``mqtt://127.0.0.1:1883``).
An error is one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import io
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["app", "format_table", "main"]

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
PROGRESS_AFTER = 0.5  # seconds: shorter runs never show a progress display

app = typer.Typer(
    name="cascade", help="Cascade: run, inspect and govern declarative async workflows.",
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
)


class CLIError(Exception):
    """An error reported as one line (``cascade <command>: <message>``) with exit status 2."""


def _fail(command: str, message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"cascade {command}: {message}", markup=False)
    return typer.Exit(code)


Broker = Annotated[str | None, typer.Option(
    "--broker", envvar="CASCADE_BROKER", metavar="mqtt://HOST:PORT", help=f"MQTT broker (default {DEFAULT_BROKER})")]
TTL = Annotated[str | None, typer.Option("--ttl", help="lift it by itself after this long (30s, 5m)")]
Target = Annotated[str, typer.Argument(
    metavar="FILE_OR_MODULE:TARGET",
    help="a lazy result, or a function making one: path/to/flow.py:main or pkg.mod:main")]
Scope = Annotated[str, typer.Argument(help="global, task:<glob> or a task name/glob")]


def _guarded(command: str, fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)``; any error becomes one line on stderr and exit status 2 (1 for a failed run)."""
    try:
        return fn(*args)
    except typer.Exit:
        raise
    except CLIError as exc:
        raise _fail(command, str(exc)) from None
    except ConnectionError as exc:
        raise _fail(command, str(exc) or "cannot connect to the broker") from None
    except (ValueError, ImportError) as exc:  # bad input (a scope, a number), a missing extra
        raise _fail(command, str(exc)) from None
    except KeyboardInterrupt:
        raise _fail(command, "interrupted", 130) from None
    except Exception as exc:
        raise _fail(command, f"{type(exc).__name__}: {exc}") from None


# -- parsing helpers ---------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|m|min|h))?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "h": 3600.0}
_PER = {"s": 1.0, "sec": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``30s``, ``500ms``, ``5m``, ``1h`` or plain seconds; raises ``CLIError``."""
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise CLIError(f"--ttl {text!r}: expected a positive duration such as 30s, 500ms, 5m or 1h")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_rate(text: str) -> float:
    """``10/s``, ``600/m``, ``2/h`` or plain calls per second; raises ``CLIError``."""
    m = _RATE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise CLIError(f"--rate {text!r}: expected a positive rate such as 10/s, 600/m or 2/h")
    return float(m.group(1)) / _PER[m.group(2)]


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value that reads as JSON (numbers, true, lists...) is that, else the text."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--param {item!r}: expected NAME=VALUE")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def load_target(spec: str) -> Any:
    """The lazy result named by ``FILE.py:ATTR`` or ``module:ATTR`` (a function is called with no
    arguments to make one). Raises ``CLIError`` naming what is missing."""
    import cascade as cs

    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise CLIError(f"{spec!r}: expected FILE.py:ATTR or module:ATTR")
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where)
        if not path.is_file():
            raise CLIError(f"{where}: no such file")
        name = f"_cascade_target_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise CLIError(f"{where}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise CLIError(f"{where}: no module named {exc.name!r}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CLIError(f"{spec}: {where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, cs.Task):
        raise CLIError(f"{spec} is a task; point at a lazy result (e.g. main = {attr}(...)) or a function making one")
    if callable(obj) and not isinstance(obj, (cs.LazyResult, cs.MappedLazyResult)):
        obj = obj()
    if not isinstance(obj, (cs.LazyResult, cs.MappedLazyResult)):
        raise CLIError(f"{spec} is a {type(obj).__name__}, not a lazy result (call a task to get one)")
    return obj


def _connector(broker: str | None, announce: bool = False) -> Any:
    from ..adapters.mqtt import MQTTConnector, parse_broker_url

    url = broker or DEFAULT_BROKER
    try:
        parse_broker_url(url)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return MQTTConnector(url, connect_timeout=5.0, announce=announce)


# -- run ---------------------------------------------------------------------------------------------

class _Counts:
    """Tasks done and running, from the bus (blocked: the engine's waiters), for the progress display."""

    def __init__(self) -> None:
        self.done = self.running = 0

    def attach(self, bus: Any) -> None:
        import cascade as cs

        bus.subscribe(cs.TaskExecutionStarted, self._started)
        bus.subscribe(cs.TaskExecutionFinished, self._finished)

    def _started(self, event: Any) -> None:
        if event.attempt == 1:
            self.running += 1

    def _finished(self, event: Any) -> None:
        if event.status != "Cached":
            self.running = max(0, self.running - 1)
        self.done += 1

    def describe(self, waiting: int) -> str:
        return f"[bold]{self.done}[/] done  [cyan]{self.running}[/] running  [yellow]{waiting}[/] blocked"


async def _run_async(target: Any, params: dict[str, Any], broker: str | None, progress: bool,
                     console: Console | None = None) -> Any:
    """Run ``target`` (connected to ``broker`` if given); a progress display on ``console`` (default
    stderr) once the run takes longer than :data:`PROGRESS_AFTER` seconds."""
    import cascade as cs

    connector = listener = telemetry = None
    console = console or Console(stderr=True)
    if broker is not None:
        from ..adapters.telemetry import TelemetryPublisher
        from ..runtime.control import ConstraintListener

        connector = _connector(broker, announce=True)  # an engine: status topic and last will
        await connector.connect()
        engine = cs.Engine(connector=connector)
        listener = ConstraintListener(engine.constraints, connector)
        await listener.start()
        telemetry = TelemetryPublisher(engine.bus, connector).start()
        engine.bus.subscribe(cs.RunStarted, lambda e: console.print(
            f"cascade run: {e.run_id} on {connector.url} (client {connector.client_id})", highlight=False))
    else:
        engine = cs.Engine()
    counts = _Counts()
    if progress:
        counts.attach(engine.bus)
    try:
        run = asyncio.ensure_future(engine.run(target, params))
        done, _ = await asyncio.wait({run}, timeout=PROGRESS_AFTER)
        if not done and progress:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=True) as bar:
                row = bar.add_task(counts.describe(0))
                while not run.done():
                    bar.update(row, description=counts.describe(engine.constraints.waiting))
                    await asyncio.wait({run}, timeout=0.1)
        return await run
    finally:
        if telemetry is not None:
            telemetry.stop()
        if listener is not None:
            await listener.stop()
        if connector is not None:
            await connector.disconnect()


@app.command("run")
def run_cmd(
    target: Target,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", metavar="NAME=VALUE", help="a cs.Param value (repeatable)")] = None,
    broker: Annotated[str | None, typer.Option(
        "--broker", envvar="CASCADE_BROKER", metavar="mqtt://HOST:PORT",
        help="take constraints from and publish telemetry to this broker")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress display")] = False,
) -> None:
    """Run a workflow and print its value."""
    def go() -> Any:
        lazy = load_target(target)
        params = parse_params(param or [])
        show = not no_progress and sys.stderr.isatty()
        try:
            return asyncio.run(_run_async(lazy, params, broker, show))
        except (CLIError, ConnectionError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise _fail("run", f"the workflow failed: {type(exc).__name__}: {exc}", 1) from None

    value = _guarded("run", go)
    typer.echo(repr(value) if not isinstance(value, str) else value)


# -- looking at a workflow ---------------------------------------------------------------------------

@app.command("visualize")
def visualize_cmd(
    target: Target,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="write to FILE (.dot; .png or .svg need Graphviz's dot)")] = None,
) -> None:
    """Print the workflow's graph as Graphviz DOT (or render it to a file)."""
    def go() -> None:
        import cascade as cs

        dot = cs.visualize(load_target(target))
        if output is None:
            typer.echo(dot, nl=False)
            return
        suffix = output.suffix.lower().lstrip(".")
        if suffix in ("", "dot", "gv"):
            output.write_text(dot)
        elif suffix in ("png", "svg", "pdf"):
            exe = shutil.which("dot")
            if exe is None:
                raise CLIError(f"rendering {suffix.upper()} needs Graphviz's dot: apt-get install graphviz "
                               "(or write the DOT text with -o FILE.dot)")
            subprocess.run([exe, f"-T{suffix}", "-o", str(output)], input=dot.encode(), check=True)
        else:
            raise CLIError(f"{output}: unknown format {suffix!r} (use .dot, .png, .svg or .pdf)")
        typer.echo(f"wrote {output}")

    _guarded("visualize", go)


@app.command("dry-run")
def dry_run_cmd(target: Target) -> None:
    """Print the workflow's plan, stage by stage, without running anything."""
    def go() -> None:
        import cascade as cs

        buffer = io.StringIO()
        cs.dry_run(load_target(target), file=buffer)
        typer.echo(buffer.getvalue(), nl=False)

    _guarded("dry-run", go)


# -- governing engines over MQTT ---------------------------------------------------------------------

async def _publish_constraints(broker: str | None, messages: list[tuple[str, bytes | None]]) -> None:
    connector = _connector(broker)
    await connector.connect()
    try:
        for topic, payload in messages:
            await connector.publish(topic, payload, retain=True)
    finally:
        await connector.disconnect()


def _describe(kind: str, settings: dict[str, Any] | None) -> str:
    if not settings:
        return ""
    if kind == "concurrency":
        return f"at most {settings['value']} running"
    if kind == "rate":
        return f"{settings['value']:g}/s, burst {settings.get('burst') or 1}"
    return ""


@app.command("pause")
def pause_cmd(scope: Scope, ttl: TTL = None, broker: Broker = None) -> None:
    """Pause every call in SCOPE on every engine listening to the broker."""
    from ..runtime.control import constraint_payload, constraint_topic

    def go() -> str:
        seconds = parse_duration(ttl) if ttl else None
        topic = constraint_topic(scope, "pause")
        payload = constraint_payload("pause", ttl=seconds, expires_at=None if seconds is None else time.time() + seconds)
        asyncio.run(_publish_constraints(broker, [(topic, payload)]))
        return topic

    topic = _guarded("pause", go)
    typer.echo(f"paused {topic.split('/')[2]}" + (f" for {ttl}" if ttl else "") + f" ({topic})")


@app.command("resume")
def resume_cmd(scope: Scope, broker: Broker = None) -> None:
    """Lift the pause of SCOPE."""
    from ..runtime.control import constraint_topic

    def go() -> str:
        topic = constraint_topic(scope, "pause")
        asyncio.run(_publish_constraints(broker, [(topic, None)]))
        return topic

    topic = _guarded("resume", go)
    typer.echo(f"resumed {topic.split('/')[2]} ({topic} cleared)")


@app.command("limit")
def limit_cmd(
    scope: Scope,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-c", help="at most N calls running at once")] = None,
    rate: Annotated[str | None, typer.Option("--rate", "-r", help="at most this many starts: 10/s, 600/m")] = None,
    burst: Annotated[int | None, typer.Option("--burst", help="rate limit bucket size (default 1)")] = None,
    ttl: TTL = None,
    broker: Broker = None,
) -> None:
    """Cap the concurrency and/or the rate of calls in SCOPE."""
    from ..runtime.control import constraint_payload, constraint_topic

    def go() -> list[str]:
        if concurrency is None and rate is None:
            raise CLIError("give --concurrency N, --rate R/s or both")
        if burst is not None and rate is None:
            raise CLIError("--burst needs --rate")
        seconds = parse_duration(ttl) if ttl else None
        expires = None if seconds is None else time.time() + seconds
        messages: list[tuple[str, bytes | None]] = []
        lines = []
        if concurrency is not None:
            try:
                payload = constraint_payload("concurrency", limit=concurrency, ttl=seconds, expires_at=expires)
            except ValueError as exc:
                raise CLIError(f"--concurrency {concurrency}: {exc}") from None
            messages.append((constraint_topic(scope, "concurrency"), payload))
            lines.append(f"at most {concurrency} running")
        if rate is not None:
            per_second = parse_rate(rate)
            try:
                payload = constraint_payload("rate", rate=per_second, burst=burst, ttl=seconds, expires_at=expires)
            except ValueError as exc:
                raise CLIError(f"--burst {burst}: {exc}") from None
            messages.append((constraint_topic(scope, "rate"), payload))
            lines.append(f"{per_second:g} starts/s (burst {burst or 1})")
        asyncio.run(_publish_constraints(broker, messages))
        return [f"limited {messages[0][0].split('/')[2]}: " + ", ".join(lines) + (f" for {ttl}" if ttl else "")]

    for line in _guarded("limit", go):
        typer.echo(line)


@app.command("clear")
def clear_cmd(
    scope: Scope,
    kind: Annotated[str | None, typer.Option("--kind", help="pause, concurrency or rate (default: all three)")] = None,
    broker: Broker = None,
) -> None:
    """Remove the constraints of SCOPE (all kinds, or one)."""
    from ..runtime.constraints import KINDS
    from ..runtime.control import constraint_topic

    def go() -> list[str]:
        kinds = KINDS if kind is None else (kind,)
        topics = [constraint_topic(scope, k) for k in kinds]
        asyncio.run(_publish_constraints(broker, [(t, None) for t in topics]))
        return topics

    topics = _guarded("clear", go)
    typer.echo(f"cleared {', '.join(topics)}")


async def _collect_status(broker: str | None) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    connector = _connector(broker)
    await connector.connect()
    constraints: list[tuple[str, Any]] = []
    engines: list[tuple[str, Any]] = []
    try:
        sub1 = await connector.subscribe("cascade/constraints/#", lambda m: constraints.append((m.topic, m.payload)))
        sub2 = await connector.subscribe("cascade/status/+", lambda m: engines.append((m.topic, m.payload)))
        await sub1.unsubscribe()
        await sub2.unsubscribe()
    finally:
        await connector.disconnect()
    return constraints, engines


@app.command("status")
def status_cmd(broker: Broker = None) -> None:
    """Show the constraints in force (retained on the broker) and the engines' status."""
    from ..runtime.control import parse_constraint_message

    constraints, engines = _guarded("status", lambda: asyncio.run(_collect_status(broker)))
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title="constraints in force", title_justify="left")
    for column in ("scope", "kind", "settings", "expires"):
        table.add_column(column)
    now = time.time()
    shown = 0
    for topic, payload in sorted(constraints):
        try:
            scope, kind, settings = parse_constraint_message(topic, payload)
        except ValueError as exc:
            table.add_row(topic, "[red]malformed[/]", str(exc), "")
            shown += 1
            continue
        if not settings:
            continue
        expires = settings.get("expires_at")
        if expires is not None and expires <= now:
            continue  # lapsed: the engines dropped it
        left = "" if expires is None else f"in {expires - now:.0f}s"
        if expires is None and settings.get("ttl"):
            left = f"{settings['ttl']:g}s after receipt"
        table.add_row(scope, kind, _describe(kind, settings), left)
        shown += 1
    if shown:
        console.print(table)
    else:
        console.print("no constraints in force")
    for topic, payload in sorted(engines):
        try:
            state = json.loads(payload).get("status", "?")
        except (ValueError, AttributeError):
            state = "?"
        console.print(f"engine {topic.rsplit('/', 1)[-1]}: {state}")


def _event_line(record: dict[str, Any]) -> str:
    data = record.get("data", {})
    stamp = datetime.fromtimestamp(record.get("ts", 0)).strftime("%H:%M:%S.%f")[:-3]
    what = record.get("type", "?")
    bits = []
    if "task_name" in data:
        bits.append(f"{data['task_name']}#{data.get('node', '?')} it={data.get('iteration', '?')}")
    for key in ("status", "reason", "target", "scope", "kind", "value", "error"):
        if data.get(key) not in (None, ""):
            bits.append(f"{key}={data[key]}")
    return f"{stamp} {record.get('run_id') or 'engine'} {what} {' '.join(bits)}".rstrip()


async def _watch(broker: str | None, run_id: str | None, count: int | None, timeout: float | None) -> int:
    connector = _connector(broker)
    await connector.connect()
    seen = 0
    done = asyncio.get_running_loop().create_future()

    def on_message(message: Any) -> None:
        nonlocal seen
        if count is not None and seen >= count:
            return
        try:
            record = json.loads(message.payload)
            line = _event_line(record)
        except (ValueError, AttributeError, TypeError):
            line = f"(malformed telemetry on {message.topic})"
        typer.echo(line)
        seen += 1
        if count is not None and seen >= count and not done.done():
            done.set_result(None)

    try:
        await connector.subscribe(f"cascade/telemetry/{run_id or '+'}/events", on_message)
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            pass
    finally:
        await connector.disconnect()
    return seen


@app.command("watch")
def watch_cmd(
    run: Annotated[str | None, typer.Option("--run", help="only this run id")] = None,
    count: Annotated[int | None, typer.Option("--count", "-n", help="stop after N events")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="stop after this many seconds")] = None,
    broker: Broker = None,
) -> None:
    """Print live telemetry (run and task events) as engines publish it; Ctrl-C stops."""
    _guarded("watch", lambda: asyncio.run(_watch(broker, run, count, timeout)))


# -- bench -------------------------------------------------------------------------------------------

def _rate(x: float) -> str:
    if math.isnan(x):
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.1f}k"
    return f"{x:,.0f}"


def _ratio(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.3f}x" if x < 1 else f"{x:.1f}x"


def format_table(results: Sequence[Any]) -> str:
    """The headline table: iterations/s hot, slow and baseline, and their ratios, one row a workload."""
    header = ["workload", "nodes", "hot it/s", "slow it/s", "baseline it/s", "hot/base", "slow/base", "hot/slow"]
    rows = [header]
    for r in results:
        ratios = r.ratios
        rows.append([
            r.title, str(r.nodes), _rate(r.rate("hot")), _rate(r.rate("slow")), _rate(r.rate("baseline")),
            _ratio(ratios["hot/baseline"]), _ratio(ratios["slow/baseline"]), _ratio(ratios["hot/slow"]),
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for j, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False)]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


class _BenchProgress:
    """The bench's status line: a rich status spinner on a terminal, one line per workload otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.enabled = enabled
        self.start = time.perf_counter()
        self.last_head = ""
        self.status: Any = None
        if enabled and self.console.is_terminal:
            self.status = self.console.status("starting")
            self.status.start()

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"{time.perf_counter() - self.start:6.1f}s {message}"
        if self.status is not None:
            self.status.update(line)
            return
        head = message.split(":", 1)[0]  # one line per workload when the output is a log
        if head != self.last_head:
            self.last_head = head
            self.console.print(line, markup=False)

    def done(self) -> None:
        if self.status is not None:
            self.status.stop()


@app.command("bench")
def bench_cmd(
    quick: Annotated[bool, typer.Option(
        "--quick", help="fewer iterations, no 10,000-agent case (a few seconds); indicative figures")] = False,
    repeat: Annotated[int | None, typer.Option(
        "--repeat", min=1, metavar="R", help="timed runs per mode (default 3); the table shows the median")] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", metavar="KEY", help="measure only this workload (repeatable; see --list)")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the workloads and exit")] = False,
    json_path: Annotated[str | None, typer.Option(
        "--json", metavar="PATH", help="write the results as JSON to PATH ('-' or no PATH: stdout, no table)")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress display on stderr")] = False,
) -> None:
    """Measure loop throughput: hot plans, slow path and hand-written asyncio, in one process."""
    from ..bench import get_workloads, run_suite

    try:
        workloads = get_workloads(only, quick=quick)
    except KeyError as exc:
        raise _fail("bench", str(exc.args[0])) from None
    if list_:
        for w in workloads:
            typer.echo(f"{w.key:10} {w.title}")
        return
    progress = _BenchProgress(not no_progress)
    started = time.perf_counter()
    try:
        results = run_suite(workloads, quick=quick, repeat=repeat, progress=progress)
    finally:
        progress.done()
    elapsed = time.perf_counter() - started
    report = {
        "quick": quick,
        "repeat": repeat if repeat is not None else 3,
        "indicative": quick,  # short runs: for a smoke check, not for quoting
        "python": platform.python_version(),
        "machine": platform.machine(),
        "seconds": round(elapsed, 2),
        "workloads": [r.as_dict() for r in results],
    }
    if json_path == "-":
        typer.echo(json.dumps(report, indent=2))
        return
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
            fh.write("\n")
    mode = "quick, indicative" if quick else "full"
    typer.echo(f"Cascade throughput ({mode}, median of {report['repeat']}; iterations per second; "
               f"Python {report['python']})")
    typer.echo(format_table(results))
    typer.echo(f"({elapsed:.1f}s; hot = Engine(), slow = Engine(hot_plans=False), "
               "baseline = hand-written asyncio)")
    if quick:
        typer.echo("Quick figures are indicative only (short runs, easily moved by other load): "
                   "quote `cascade bench` without --quick.")


def _normalise(argv: list[str]) -> list[str]:
    """``--json`` with no value means stdout (as it always did)."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--json" and (i + 1 == len(out) or out[i + 1].startswith("-") and out[i + 1] != "-"):
            out.insert(i + 1, "-")
            break
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (errors are one line on stderr)."""
    args = _normalise(list(sys.argv[1:] if argv is None else argv))
    try:
        # Outside standalone mode click hands back the code of an Exit raised in a command.
        code = app(args=args, prog_name="cascade", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("cascade: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Usage errors (click's, possibly vendored by typer): one line, click's exit status.
        message = getattr(exc, "format_message", None)
        if not callable(message):
            raise
        command = f" {args[0]}" if args and not args[0].startswith("-") else ""
        print(f"cascade{command}: {message()}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
