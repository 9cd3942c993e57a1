"""Print the mutation score and the surviving mutants of the last ``mutmut run`` (used by ``nox -s mutation``).

Reads mutmut's own listing (``mutmut results --all True``), so the numbers are the tool's. Optional
arguments are mutant-name globs (as given to ``mutmut run``) that restrict the report to those mutants.
Score = killed / checked, where a timeout counts as killed and "checked" leaves out mutants that were
not run (``not checked``); mutants that no selected test reaches (``no tests``) count as not killed.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from collections import Counter

KILLED = {"killed", "timeout", "caught by type check"}


def by_module(status: dict[str, str]) -> list[tuple[str, int, int, int]]:
    """(module, killed, checked, not killed) per mutated module, in name order: where the score
    comes from. A mutant name is ``<module>.<x_function or xǁClassǁmethod>__mutmut_<n>``."""
    rows: dict[str, list[int]] = {}
    for name, state in status.items():
        if state == "not checked":
            continue
        module = name.rsplit(".", 1)[0] if "ǁ" not in name else name.split(".xǁ", 1)[0]
        row = rows.setdefault(module, [0, 0])
        row[0] += state in KILLED
        row[1] += 1
    return [(m, k, c, c - k) for m, (k, c) in sorted(rows.items())]


def main(globs: list[str]) -> int:
    out = subprocess.run(["mutmut", "results", "--all", "True"], check=True, capture_output=True, text=True).stdout
    status: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, state = line.strip().rpartition(": ")
        if sep and name.startswith("cascade."):
            status[name] = state
    if globs:
        status = {n: s for n, s in status.items() if any(fnmatch.fnmatch(n, g) for g in globs)}
    counts = Counter(status.values())
    checked = sum(c for s, c in counts.items() if s != "not checked")
    killed = sum(counts[s] for s in KILLED)
    print("mutants by status:", ", ".join(f"{s}={c}" for s, c in sorted(counts.items())))
    survivors = sorted(n for n, s in status.items() if s not in KILLED | {"not checked"})
    print(f"\nnot killed ({len(survivors)}; `mutmut show <name>` prints a mutant's diff):")
    for name in survivors:
        print(f"    {name}: {status[name]}")
    print("\nby module (killed / checked, not killed):")
    for module, k, c, alive in by_module(status):
        print(f"    {module:40} {k:5} / {c:<5} {100.0 * k / c:5.1f}%  {alive:4} not killed")
    score = 100.0 * killed / checked if checked else 0.0
    print(f"\nmutation score: {killed}/{checked} killed ({score:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
