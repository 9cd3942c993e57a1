"""A cache backend in a directory: one file per entry, shared safely by concurrent processes.

Layout: ``<directory>/<key[:2]>/<key>``, each file one entry in the format of
:mod:`cascade.adapters.serialization` (bound to its key). A write goes to a temporary file in the
same directory and is moved into place with ``os.replace``, which is atomic: a reader in any
process sees the old entry, the new one or none, never a partial file. Two processes storing one
key race harmlessly (the last rename wins; both wrote the value of the same call).

Reads and writes are plain blocking file calls made on the event loop (entries are small and local;
a cache on a slow network filesystem belongs in Redis). Nothing is ever evicted: delete the
directory, or files in it, to free space; a missing file is a miss.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .serialization import Serializer

__all__ = ["FileCache"]


class FileCache:
    """Cache policy storing entries as files under ``directory`` (created if missing).

    ``key``: HMAC secret (bytes/str, >= 16 bytes) to authenticate entries and allow pickled
    values; without it only plain data is cached (docs/stores.md). ``fsync``: flush each entry to
    disk before it becomes visible (survives power loss; slower).

    ``get`` raises :class:`~cascade.errors.CorruptEntryError` for an entry that fails its check
    and ``OSError`` when the directory is unreadable; ``set`` raises
    :class:`~cascade.adapters.serialization.Unserialisable` or ``OSError`` (disk full). The engine
    turns each into a miss (``cs.CacheBypassed``).
    """

    def __init__(self, directory: str | os.PathLike[str], *, key: bytes | str | None = None,
                 fsync: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.serializer = Serializer(key)
        self.fsync = bool(fsync)

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"FileCache keys are hex digests, got {key!r}")
        return self.directory / key[:2] / key

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` when an entry for ``key`` exists and passes its check."""
        try:
            entry = self._path(key).read_bytes()
        except FileNotFoundError:
            return False, None
        return True, self.serializer.loads(entry, key.encode())

    def set(self, key: str, value: Any) -> None:
        """Write the entry atomically (temporary file, then ``os.replace``)."""
        entry = self.serializer.dumps(value, key.encode())
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(entry)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def __len__(self) -> int:
        """How many entries the directory holds."""
        return sum(1 for p in self.directory.glob("??/*") if not p.name.startswith(".tmp-"))

    def __repr__(self) -> str:
        return f"FileCache({str(self.directory)!r})"
