"""The collector as a child process (`python -m collector.cli run`): the one helper the
demo, the evaluation, the benchmarks and the tests start, kill and restart it with.

Two ways in:
- `CollectorProcess.start(stack, client_id, env=..., config=...)`: against a
  `LocalStack` (its broker and store through `LORDI_COLLECTOR_*`), returned once
  this process has subscribed;
- `CollectorProcess(config, log)` then `.spawn()`: a TOML file written by
  `write_collector_config`, for tests that kill, pause and restart the same
  collector (each restart appends to the same log; `this_run()` is the current
  process's part of it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lordi.stack import LocalStack

REPO = Path(__file__).resolve().parents[1]
_STATS = re.compile(rb"stats (\{[^\n]*\})")


def write_collector_config(
    path: Path, more: dict[str, dict[str, Any]] | None = None, **sections: dict[str, Any]
) -> Path:
    """A collector TOML file from {section: {key: value}} (values: str, int, float, bool);
    `more` for dotted sections such as "alerts.notify.smtp"."""
    sections = {**sections, **(more or {})}

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return json.dumps(str(v))  # a TOML basic string is a JSON string

    lines: list[str] = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _wait(pred: Callable[[], bool], timeout_s: float, step_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step_s)
    return pred()


@dataclass
class CollectorProcess:
    """`lordi-collector run [--config FILE]`, its output appended to `log`; `env`
    is added to this process's environment (`LORDI_COLLECTOR_*` settings win over
    the file)."""

    config: Path | None
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    stats_interval_s: float = 1.0
    starts: int = 0
    _proc: subprocess.Popen[bytes] | None = None
    _offset: int = 0

    @classmethod
    def start(
        cls,
        stack: LocalStack,
        client_id: str = "lordi-collector-1",
        *,
        env: dict[str, str] | None = None,
        stats_interval_s: float = 5,
        log: Path | None = None,
        config: Path | None = None,
        timeout_s: float = 30,
    ) -> CollectorProcess:
        """Against the stack, returned once it has subscribed (RuntimeError with the
        log's end if it did not in `timeout_s`)."""
        extra = {**stack.env(), "LORDI_COLLECTOR_MQTT__CLIENT_ID": client_id, **(env or {})}
        self = cls(config, log or stack.root / f"{client_id}.log", extra, stats_interval_s)
        self.spawn()
        if not self.wait_subscribed(timeout_s):
            self.stop()
            tail = self.this_run().decode(errors="replace")[-2000:]
            raise RuntimeError(f"collector did not start:\n{tail}")
        return self

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError("the collector process was never started")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def spawn(self) -> None:
        """Start the process (again): its output goes on after what the log holds."""
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        argv = [sys.executable, "-m", "collector.cli", "run",
                "--stats-interval", str(self.stats_interval_s),
                *(["--config", str(self.config)] if self.config else [])]  # fmt: skip
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.starts += 1

    def this_run(self) -> bytes:
        """What the current process wrote to the log so far."""
        return self.log.read_bytes()[self._offset :] if self.log.exists() else b""

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_subscribed(self, timeout_s: float = 60) -> bool:
        """This process has subscribed (False if it exited or the time ran out)."""
        return _wait(
            lambda: b"subscribed to" in self.this_run() or not self.running(), timeout_s
        ) and b"subscribed to" in self.this_run()

    def last_stats(self) -> dict[str, int]:
        found = _STATS.findall(self.this_run())
        return dict(json.loads(found[-1])) if found else {}

    def signal(self, sig: int) -> None:
        if self.running():
            self.proc.send_signal(sig)

    def kill(self) -> None:
        if self._proc is not None:
            self.signal(signal.SIGCONT)  # a paused process must die too
            self.signal(signal.SIGKILL)
            self._proc.wait(10)

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM (a clean stop) and its exit code; SIGKILL if it does not stop in time."""
        if self._proc is None:
            return None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
            return None
