"""One writer per run directory: an OS-level lock held for a run's lifetime.

A run takes an exclusive ``fcntl.flock`` on ``run_dir/.lock`` before it writes anything and
keeps it until it ends; the file records the holder (PID, host, start time) so a second run on
the same directory is refused at once with a message naming it. The operating system drops a
flock when its process dies (even by SIGKILL), so a lock file left behind by a dead run holds no
lock: the next run takes it over and says whose it was. A holder that ends normally empties the
file, so only a run that died leaves its record behind.

Within one process the lock is re-entrant (``run_from_config`` holds it across training and the
suite evaluation, and the trainer takes it again for direct ``Trainer.run`` callers).

flock is advisory and local to one machine's kernel; on network file systems that do not
forward it (some NFS setups) two hosts may both acquire it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rlrobust.core.errors import RunDirLockedError

LOCK_FILE = ".lock"

_HELD: dict[Path, list[Any]] = {}  # resolved run dir -> [open lock file, depth], this process


def _describe(holder: dict[str, Any]) -> str:
    return f"PID {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"


def _read_holder(fh: Any) -> dict[str, Any] | None:
    fh.seek(0)
    text = fh.read()
    if not text.strip():
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {"pid": "?", "host": "?", "started": f"? (unreadable lock record {text[:60]!r})"}
    return holder if isinstance(holder, dict) else None


@contextlib.contextmanager
def hold_run_dir(run_dir: str | Path, *, log: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the run directory's lock for the ``with`` block.

    Args:
        run_dir: the run directory (created if missing).
        log: where the stale-lock takeover message goes.

    Raises:
        RunDirLockedError: another live process holds the lock; the message names it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = run_dir.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    fh = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 (closed in finally, after the with block)
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fh) or {}
            raise RunDirLockedError(
                f"run dir {run_dir} is in use by another run ({_describe(holder)}); wait for it to finish, "
                "stop it, or choose another run_dir"
            ) from None
        stale = _read_holder(fh)
        if stale is not None:
            log(
                f"run dir {run_dir}: taking over the lock left by a run that is no longer running "
                f"({_describe(stale)})"
            )
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(me))
        fh.flush()
        _HELD[key] = [fh, 1]
        try:
            yield
        finally:
            del _HELD[key]
            fh.truncate(0)  # a clean end leaves no record: only a dead run's record means "stale"
            fh.flush()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()
