"""tools/results_store.py: the asv results store on a git branch, run as a script in a real repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "results_store.py"
ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": os.environ["PATH"], "HOME": os.devnull}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=ENV).stdout


def _store(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=repo, capture_output=True, text=True,
                          env=ENV)


def _repo(path: Path) -> Path:
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    (path / "code.py").write_text("x = 1\n")
    _git(path, "add", "code.py")
    _git(path, "commit", "-q", "-m", "code")
    return path


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_save_merges_into_the_branch_and_leaves_main_alone(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    results = repo / ".asv" / "results"
    _write(results, {"benchmarks.json": "b1", "m/machine.json": "m", "m/aaaa-env.json": "a"})
    head = _git(repo, "rev-parse", "HEAD")
    assert _store(repo, "save").returncode == 0
    _write(results, {"benchmarks.json": "b2", "m/bbbb-env.json": "b"})
    (results / "m" / "aaaa-env.json").unlink()  # gone locally: the store keeps it
    assert _store(repo, "save").returncode == 0
    tree = _git(repo, "ls-tree", "-r", "--name-only", "benchmark-results").split()
    assert tree == ["README.md", "results/benchmarks.json", "results/m/aaaa-env.json",
                    "results/m/bbbb-env.json", "results/m/machine.json"]
    assert _git(repo, "show", "benchmark-results:results/benchmarks.json") == "b2"
    assert _git(repo, "rev-list", "--count", "benchmark-results") == "2\n"
    assert _git(repo, "rev-parse", "HEAD") == head
    assert _git(repo, "symbolic-ref", "HEAD") == "refs/heads/main\n"
    assert _git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    unchanged = _store(repo, "save")
    assert "unchanged" in unchanged.stdout
    assert _git(repo, "rev-list", "--count", "benchmark-results") == "2\n"


def test_restore_fills_an_empty_results_dir_and_keeps_local_files(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    results = repo / ".asv" / "results"
    _write(results, {"benchmarks.json": "b", "m/aaaa-env.json": "stored"})
    assert _store(repo, "save").returncode == 0
    _write(results, {"m/aaaa-env.json": "local, not saved yet"})
    (results / "benchmarks.json").unlink()
    done = _store(repo, "restore")
    assert done.returncode == 0, done.stderr
    assert (results / "benchmarks.json").read_text() == "b"
    assert (results / "m" / "aaaa-env.json").read_text() == "local, not saved yet"


def test_restore_from_a_remote_and_push_back(tmp_path: Path) -> None:
    origin = _repo(tmp_path / "origin")
    _write(origin / ".asv" / "results", {"m/aaaa-env.json": "a"})
    assert _store(origin, "save").returncode == 0
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert "benchmark-results" not in _git(clone, "branch", "--list")
    done = _store(clone, "restore", "--remote", "origin")
    assert done.returncode == 0, done.stderr
    assert (clone / ".asv" / "results" / "m" / "aaaa-env.json").read_text() == "a"
    _write(clone / ".asv" / "results", {"m/bbbb-env.json": "b"})
    assert _store(clone, "save", "--push", "origin").returncode == 0
    assert _git(origin, "show", "benchmark-results:results/m/bbbb-env.json") == "b"


def test_restore_without_a_store_is_an_empty_restore_and_git_errors_exit_2(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    done = _store(repo, "restore", "--remote", "origin")  # no such remote
    assert done.returncode == 2
    done = _store(repo, "restore")
    assert done.returncode == 0 and "restored 0 files" in done.stdout
