"""A real mosquitto broker on a free loopback port, for the MQTT connector and control-plane tests."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

INSTALL_HINT = (
    "mosquitto is needed for the MQTT tests (a real broker is started on a free loopback port): "
    "install it: apt-get install mosquitto"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str:
    """The mosquitto executable (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin:/opt/homebrew/sbin")
    if found is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found


class MosquittoServer:
    """``mosquitto -c <config>`` with ``listener PORT 127.0.0.1`` and ``allow_anonymous true``.

    Retained messages persist across :meth:`restart` (``persistence true`` in a temporary
    directory, saved on a graceful stop), as on a production broker. ``stop()`` ends it.
    """

    def __init__(self) -> None:
        self.exe = find_mosquitto()
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="cascade-mosquitto-"))
        self.config = self.dir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.dir}{os.sep}\n"
            "autosave_interval 0\n"
            "log_type error\n"
            # started as root, mosquitto would switch to user "mosquitto", who cannot write here
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        self.proc = subprocess.Popen([self.exe, "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = b""
                if self.proc.poll() is not None and self.proc.stderr is not None:
                    err = self.proc.stderr.read()
                self.stop()
                pytest.fail(f"mosquitto did not start on port {self.port}: {err.decode(errors='replace')}",
                            pytrace=False)
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the broker gracefully (it saves retained messages) and reap it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port (clients see their connection drop)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the temporary directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
