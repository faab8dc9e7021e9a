"""Run a check as an account that lacks a permission, for the "not readable" tests.

The tests run as root (CI does), who reads every file, so a refusal can only be
seen from another account: a forked child switches to `nobody` before the check
(no exec: the interpreter and the project need not be readable by that account;
what the check imports lazily is imported here first). Run as another user than
root, the child keeps that user, for whom a file of mode 0000 is unreadable too.
"""

from __future__ import annotations

import grp
import os
import pwd
import select
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NOBODY = pwd.getpwnam("nobody")


@dataclass(frozen=True)
class Outcome:
    code: int  # the check's return value, its exit code
    stderr: str
    account: str  # "uid 65534 (nobody)"
    group: str  # its group's name


def as_other_user(check: Callable[[], int], timeout_s: float = 30.0) -> Outcome:
    """Run `check()` in a child as `nobody` (or as this non-root user)."""
    root = os.geteuid() == 0
    uid, gid = (NOBODY.pw_uid, NOBODY.pw_gid) if root else (os.geteuid(), os.getegid())
    account = f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    group = grp.getgrgid(gid).gr_name
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.close(read_end)
            sys.stderr = os.fdopen(write_end, "w", encoding="utf-8", buffering=1)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY.pw_gid)
                os.setuid(NOBODY.pw_uid)
            code = check()
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    while True:  # read until the child closes its end (at exit), within the deadline
        left = deadline - time.monotonic()
        ready, _, _ = select.select([read_end], [], [], max(0.0, left))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            raise AssertionError("the check as another user did not finish")
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8")
    return Outcome(os.waitstatus_to_exitcode(status), text, account, group)


def open_folder() -> Path:
    """A new folder every account may enter (pytest's tmp_path is root's only);
    the caller removes it."""
    folder = Path(tempfile.mkdtemp(prefix="lordi-perm-"))
    folder.chmod(0o755)
    return folder


def locked(path: Path, text: str) -> Path:
    """A file nobody but root may read (mode 0000)."""
    path.write_text(text, encoding="utf-8")
    path.chmod(0o000)
    return path
