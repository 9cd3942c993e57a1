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
    score = 100.0 * killed / checked if checked else 0.0
    print(f"\nmutation score: {killed}/{checked} killed ({score:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
