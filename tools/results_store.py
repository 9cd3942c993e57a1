"""The asv results store: a git branch (default ``benchmark-results``) holding asv's results directory.

The branch's tree is ``results/`` (asv's ``results_dir``: ``benchmarks.json`` and one directory per
machine with ``machine.json`` and one ``<commit>-<environment>.json`` per measured commit) and a
``README.md``. It never shares history with ``main`` and is never checked out: this script reads it
with ``git archive`` and writes it with plumbing (a temporary index, ``write-tree``, ``commit-tree``,
``update-ref``), so the working tree and the current branch are left alone.

    python tools/results_store.py restore [--branch B] [--results-dir .asv/results] [--remote origin]
    python tools/results_store.py save    [--branch B] [--results-dir .asv/results] [--push origin]

``restore`` copies the store's files into the results directory, keeping local files of the same
name (they are newer: a run that has not been saved yet); ``--remote`` first fast-forwards the local
branch from that remote's branch (when the remote has it). ``save`` merges the results directory into
the branch (a file in both: the local copy wins; a file only in the store stays) and commits only
when something changed; ``--push`` then pushes the branch. Exit status: 0 ok, 2 git failed.
See docs/benchmark-history.md.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DEFAULT_BRANCH = "benchmark-results"
PREFIX = "results"  # the results directory's place in the branch's tree
README = """# Cascade benchmark results (asv)

This branch is the results store of `nox -s history` and the benchmarks workflow: `results/` is
asv's results directory (`benchmarks.json`, and per machine `machine.json` plus one JSON file per
measured commit). It shares no history with `main`. Written by `tools/results_store.py save`;
`nox -s dashboard` rebuilds the HTML from it. See docs/benchmark-history.md on `main`.
"""


class StoreError(RuntimeError):
    """A git command the store needs failed."""


def _git(*args: str, env: dict[str, str] | None = None, data: bytes | None = None) -> bytes:
    proc = subprocess.run(["git", *args], capture_output=True, input=data,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise StoreError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _commit_of(branch: str) -> str | None:
    """The commit ``refs/heads/<branch>`` points at, or None when there is no such branch."""
    proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def fetch(branch: str, remote: str) -> bool:
    """Fast-forward the local branch from ``remote``'s; False when the remote has no such branch."""
    if not _git("ls-remote", "--heads", remote, f"refs/heads/{branch}").strip():
        return False
    _git("fetch", "--no-tags", remote, f"refs/heads/{branch}:refs/heads/{branch}")
    return True


def restore(branch: str, results: Path) -> tuple[int, int]:
    """Copy the store's files into ``results``: (files written, local files kept)."""
    commit = _commit_of(branch)
    if commit is None:
        return 0, 0
    archive = _git("archive", "--format=tar", commit, PREFIX)
    written = kept = 0
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            rel = Path(member.name).relative_to(PREFIX)
            target = results / rel
            if target.exists():
                kept += 1
                continue
            source = tar.extractfile(member)
            assert source is not None  # a regular file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read())
            written += 1
    return written, kept


def save(branch: str, results: Path, message: str) -> str | None:
    """Merge ``results`` into the branch; the new commit, or None when nothing changed."""
    parent = _commit_of(branch)
    files = sorted(p for p in results.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory(prefix="cascade-results-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if parent is not None:
            _git("read-tree", parent, env=env)
        else:
            blob = _git("hash-object", "-w", "--stdin", data=README.encode()).decode().strip()
            _git("update-index", "--add", "--cacheinfo", f"100644,{blob},README.md", env=env)
        if files:  # one hash-object and one update-index for all files, however many commits
            blobs = _git("hash-object", "-w", "--stdin-paths",
                         data="".join(f"{p}\n" for p in files).encode()).decode().split()
            info = "".join(f"100644 {blob}\t{PREFIX}/{path.relative_to(results).as_posix()}\n"
                           for blob, path in zip(blobs, files, strict=True))
            _git("update-index", "--add", "--index-info", env=env, data=info.encode())
        tree = _git("write-tree", env=env).decode().strip()
    if parent is not None and _git("rev-parse", f"{parent}^{{tree}}").decode().strip() == tree:
        return None
    args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
    commit = _git(*args).decode().strip()
    # compare-and-swap: fails rather than dropping a commit someone else put on the branch meanwhile
    _git("update-ref", "-m", "results_store save", f"refs/heads/{branch}", commit, parent or "0" * 40)
    return commit


def main() -> int:
    """Command line: ``restore`` or ``save``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["restore", "save"])
    parser.add_argument("--branch", default=DEFAULT_BRANCH)
    parser.add_argument("--results-dir", default=".asv/results", type=Path)
    parser.add_argument("--remote", help="restore: fast-forward the branch from this remote first")
    parser.add_argument("--push", metavar="REMOTE", help="save: push the branch to this remote afterwards")
    parser.add_argument("--message", default="asv results")
    args = parser.parse_args()
    results: Path = args.results_dir
    try:
        if args.action == "restore":
            if args.remote and not fetch(args.branch, args.remote):
                print(f"results_store: {args.remote} has no branch {args.branch} yet (empty store)")
            written, kept = restore(args.branch, results)
            print(f"results_store: restored {written} files from {args.branch} into {results}"
                  + (f" ({kept} local files of the same name kept)" if kept else ""))
        else:
            if not results.is_dir():
                print(f"results_store: no {results} to save", file=sys.stderr)
                return 2
            commit = save(args.branch, results, args.message)
            count = sum(1 for p in results.rglob("*.json") if p.is_file())
            print(f"results_store: {args.branch} " + (f"at {commit[:10]} ({count} files from {results})"
                                                     if commit else "unchanged"))
            if args.push:
                _git("push", args.push, f"refs/heads/{args.branch}:refs/heads/{args.branch}")
                print(f"results_store: pushed {args.branch} to {args.push}")
    except StoreError as exc:
        print(f"results_store: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
