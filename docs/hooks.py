"""MkDocs hook: render the Sphinx roles of Cascade's docstrings as plain code.

Docstrings say ``:class:`Engine``` and ``:meth:`resume```; mkdocstrings shows them as text followed by
code. This drops the role name, and a leading ``~module.path.`` (Sphinx's "show only the last part").
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|data|attr|exc|mod|obj):(?=<code)")
_TILDE = re.compile(r"<code>~(?:[A-Za-z_][\w]*\.)*([\w]+)</code>")


def on_page_content(html: str, **_: Any) -> str:
    """Strip role names and ``~`` paths from the rendered page."""
    return _TILDE.sub(r"<code>\1</code>", _ROLE.sub("", html))
