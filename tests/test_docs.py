"""The documentation stays true: every script a docs page includes prints the output the page shows,
and the API reference covers ``cascade.__all__``. (``nox -s docs`` builds the site itself.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import cascade as cs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# an included script, then (optionally) "Output:" and a text block with what it prints
_INCLUDE = re.compile(r'```python\n--8<-- "([^"]+)"\n```\n(?:\nOutput:\n\n```text\n(.*?)```\n)?', re.S)


def _includes() -> list[tuple[str, str, str | None]]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        for path, output in _INCLUDE.findall(page.read_text()):
            found.append((str(page.relative_to(DOCS)), path, output or None))
    return found


INCLUDES = _includes()


def test_pages_include_scripts_and_every_snippet_is_included():
    included = {path for _, path, _ in INCLUDES}
    snippets = {f"docs/snippets/{p.name}" for p in (DOCS / "snippets").glob("*.py")}
    assert len(INCLUDES) >= 8
    assert snippets <= included, f"snippets no page shows: {sorted(snippets - included)}"


@pytest.mark.parametrize(("page", "path", "output"), INCLUDES, ids=[f"{p}:{s}" for p, s, _ in INCLUDES])
def test_an_included_script_prints_what_the_page_shows(page, path, output):
    assert (ROOT / path).is_file(), f"{page} includes {path}, which does not exist"
    proc = subprocess.run([sys.executable, path], cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    if output is not None:
        shown = [line.rstrip() for line in output.splitlines()]
        printed = [line.rstrip() for line in proc.stdout.splitlines()]
        assert printed == shown, f"{page} shows an output that {path} no longer prints"


def test_the_api_reference_documents_every_public_name_once():
    text = (DOCS / "reference" / "api.md").read_text()
    names = re.findall(r"^::: cascade\.(\w+)$", text, re.M)
    assert sorted(names) == sorted(cs.__all__)


def test_every_public_name_has_a_docstring():
    # a dataclass without one gets its signature, "Name(field: type, ...)", as __doc__
    def documented(name: str) -> bool:
        doc = (getattr(cs, name).__doc__ or "").strip()
        return bool(doc) and not doc.startswith(f"{name}(")

    assert [n for n in cs.__all__ if n != "TIMED_OUT" and not documented(n)] == []


_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
_PRINTED = re.compile(r"^print\(.*\)\s+# (.+)$", re.M)


@pytest.mark.parametrize("page", ["index.md", "getting-started.md"])
def test_inline_code_of_a_page_runs_and_prints_its_comments(page):
    # the page's python blocks run as one script; each `print(...)  # value` line must print value
    code = "\n".join(b for b in _BLOCK.findall((DOCS / page).read_text()) if "--8<--" not in b)
    expected = _PRINTED.findall(code)
    assert expected
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected
