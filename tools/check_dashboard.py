"""Check the published asv dashboard in headless Chromium, as a person would look at it.

Serves ``.asv/html`` on localhost, opens the index and one benchmark's graph page, saves screenshots
(``--out``, default ``.asv/screenshots``) and checks the rendered DOM: the index lists the suite's
benchmarks, and the graph page draws a graph (flot's canvas) for the benchmark. With
``--regressions NAME``, also the regressions page (``#regressions``, asv's step detection over the
history): ``regressions.json`` and the rendered table both list a regression of NAME (a benchmark as
the page names it, e.g. ``loops.TailCallLoops.time_loop('countdown', 'hot')``, or the start of it).
Exit status: 0 ok, 1 a check failed, 2 could not check (no dashboard, no browser).

    python tools/check_dashboard.py [--html-dir .asv/html] [--benchmark NAME] [--out DIR] [--regressions NAME]
"""

from __future__ import annotations

import argparse
import functools
import html as html_lib
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1400,1400", "--virtual-time-budget=20000",
]
DEFAULT_BENCHMARK = "loops.TailCallLoops.time_loop"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _browse(browser: str, url: str, *extra: str) -> str:
    with tempfile.TemporaryDirectory(prefix="cascade-chromium-") as profile:
        proc = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                              capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html-dir", default=".asv/html")
    parser.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help="the benchmark whose graph page to check")
    parser.add_argument("--out", default=".asv/screenshots")
    parser.add_argument("--regressions", metavar="NAME",
                        help="also check that the regressions page lists a regression of NAME")
    args = parser.parse_args()
    html = Path(args.html_dir)
    index_json = html / "index.json"
    if not index_json.is_file():
        print(f"check_dashboard: no dashboard in {html} (run `nox -s history` first)", file=sys.stderr)
        return 2
    browser = _chromium()
    if browser is None:
        print("check_dashboard: chromium not found (apt-get install -y chromium)", file=sys.stderr)
        return 2
    index = json.loads(index_json.read_text())
    names = sorted(index["benchmarks"])
    if args.benchmark not in index["benchmarks"]:
        print(f"check_dashboard: {args.benchmark} is not in the dashboard", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    failures: list[str] = []
    try:
        # the index: a grid with one entry per benchmark
        _browse(browser, base + "index.html", f"--screenshot={(out / 'index.png').resolve()}")
        dom = _browse(browser, base + "index.html", "--dump-dom")
        shown = [n for n in names if n in dom]
        print(f"index: {len(shown)}/{len(names)} benchmarks listed; screenshot {out / 'index.png'}")
        if len(shown) < len(names):
            failures.append(f"index lacks {sorted(set(names) - set(shown))}")

        # one benchmark's graph page: flot draws into <canvas class="flot-base">
        params = index["benchmarks"][args.benchmark].get("params") or []
        pnames = index["benchmarks"][args.benchmark].get("param_names") or []
        query = "&".join(f"p-{k}={urllib.parse.quote(str(v[0]))}" for k, v in zip(pnames, params, strict=False))
        url = f"{base}index.html#{args.benchmark}" + (f"?{query}" if query else "")
        shot = out / "graph.png"
        _browse(browser, url, f"--screenshot={shot.resolve()}")
        dom = _browse(browser, url, "--dump-dom")
        canvases = len(re.findall(r"<canvas[^>]*flot-(?:base|overlay)", dom))
        titled = args.benchmark in dom
        points = sum(len(r) for r in _graph_points(html, args.benchmark))
        print(f"graph page {args.benchmark}: {canvases} flot canvases, name shown: {titled}, "
              f"{points} data points in its graph files; screenshot {shot}")
        if not canvases:
            failures.append("graph page has no flot canvas")
        if not titled:
            failures.append("graph page does not name the benchmark")
        if points < 2:
            failures.append("the graph has fewer than 2 points (commits) to draw")
        if args.regressions:
            failures += _check_regressions(browser, base, html, args.regressions, out / "regressions.png")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"check_dashboard: could not run chromium: {exc}", file=sys.stderr)
        return 2
    finally:
        server.shutdown()
    for f in failures:
        print(f"FAIL: {f}")
    print("dashboard OK" if not failures else "dashboard check FAILED")
    return 1 if failures else 0


def _check_regressions(browser: str, base: str, html: Path, name: str, shot: Path) -> list[str]:
    """Screenshot ``#regressions`` and check that the data and the rendered table list ``name``."""
    data = json.loads((html / "regressions.json").read_text()).get("regressions", [])
    detected = [r for r in data if r[0].startswith(name)]
    url = f"{base}index.html#regressions"
    _browse(browser, url, f"--screenshot={shot.resolve()}")
    dom = html_lib.unescape(_browse(browser, url, "--dump-dom"))
    rows = re.findall(r"<tr\b.*?</tr>", dom, re.S)
    shown = [r for r in rows if name in re.sub(r"<[^>]+>", "", r)]
    for r in detected:
        # the step asv found: the value before it, the latest value, and their ratio
        print(f"regression detected: {r[0]}: {r[5]:.4g} -> {r[4]:.4g} ({r[4] / r[5]:.2f}x)")
    print(f"regressions page: {len(rows)} table rows, {len(shown)} naming {name}; {len(data)} regressions "
          f"in regressions.json; screenshot {shot}")
    failures = []
    if not detected:
        failures.append(f"regressions.json lists no regression of {name}")
    if not shown:
        failures.append(f"the regressions page shows no row naming {name}")
    return failures


def _graph_points(html: Path, benchmark: str) -> list[list]:
    """Data series asv wrote for ``benchmark`` (one JSON file per machine/environment combination)."""
    series = []
    for path in (html / "graphs").rglob(f"{benchmark}.json"):
        data = json.loads(path.read_text())
        series.append([p for p in data if p and p[1] is not None])
    return series


if __name__ == "__main__":
    sys.exit(main())
