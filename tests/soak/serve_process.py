"""``pippin serve`` as an operating-system process of its own, started, killed with SIGKILL and started again, the way
a power cut or an OOM kill would stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from pippin.config import ENV_PREFIX, Settings

#: An upper bound for the server to come up on a busy machine, never a timing a test measures.
START_TIMEOUT_SECONDS = 60.0


def settings_environment(settings: Settings, **more: str) -> dict[str, str]:
    """The environment that gives a ``pippin`` process the settings ``settings`` was given explicitly (paths, URLs,
    the key), plus ``more`` (``apns_timeout="PT5S"``): the caller's environment without its own PIPPIN_ values."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump(exclude_unset=True).items():
        if value is not None:
            shown = value.get_secret_value() if isinstance(value, SecretStr) else value
            env[f"{ENV_PREFIX}{name.upper()}"] = str(shown)
    env.update({f"{ENV_PREFIX}{name.upper()}": value for name, value in more.items()})
    return env


class ServeProcess:
    """``pippin serve`` on ``port`` with ``env``; its output goes to ``log``."""

    def __init__(self, env: dict[str, str], *, port: int, log: Path) -> None:
        self.env = env
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.starts = 0
        self.kills = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [str(Path(sys.executable).with_name("pippin")), "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"pippin serve exited with {self._process.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"pippin serve did not answer /healthz within {START_TIMEOUT_SECONDS} s; see {self.log}")

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, open transactions are cut where they stand."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=30)
            self.kills += 1
        self._process = None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)
        self._process = None
