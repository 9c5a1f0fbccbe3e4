"""One writer per workdir: a run holds ``<workdir>/.lock`` from before its
first write until it ends.

The lock is an advisory ``flock`` on that file, so the kernel releases it
when the holding process ends in any way, ``kill -9`` included: a lock left
by a killed run is never mistaken for a live one. The file names the holder
(process id, host, start time, command) for the message a second run gets;
a run that ends normally removes it, so a file found unlocked is the trace
of a run that was killed, and is taken over with a note. With several
processes, process 0 holds the lock for all of them.

Only the standard library, so that a process can hold a lock without loading jax.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

NAME = ".lock"


class WorkdirInUse(Exception):
    """Another live run holds the workdir (the message names it)."""


def _holder() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(sys.argv)[:300],
    }


def _describe(holder: dict) -> str:
    if not holder:
        return "a run that has not written its name yet"
    return (f"process {holder.get('pid')} on host {holder.get('host')} "
            f"(started {holder.get('started')}: {holder.get('command') or '?'})")


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        value = {"command": text[:200]}
    return value if isinstance(value, dict) else {}


def _open_locked(path: Path, note) -> int | None:
    """The file descriptor of ``path`` opened and locked by this process
    (None where the file system has no locks); WorkdirInUse when another holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise WorkdirInUse(
                f"{path.parent}: another run is writing this workdir: {_describe(holder)}. Wait for it to end, or "
                "stop it; a second run in one workdir is refused (its lock is released when its process ends)"
            ) from None
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            note(f"[jaxkd] note: {path.parent} cannot be locked ({err.strerror}); make sure no other run writes it")
            return None
        # The file may have been removed by the run that held it just before
        # it let go: a lock on the removed file guards nothing. Try again.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def hold(workdir: Path, *, main: bool = True, note=print):
    """Holds ``workdir``'s lock for the body of the ``with`` (creating the
    directory); ``main=False`` (a process other than 0) takes none.

    Raises:
      WorkdirInUse: another live process holds it (named in the message).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if not main:
        yield
        return
    path = workdir / NAME
    fd = _open_locked(path, note)
    if fd is None:
        yield
        return
    try:
        left = _read(fd)
        if left:
            note(f"[jaxkd] note: {workdir} was locked by {_describe(left)}, which ended without releasing it "
                 "(killed?); taking the lock over")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(_holder()).encode())
        os.fsync(fd)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # before letting go: a waiting run then finds no file to mistake for a killed run's
        os.close(fd)
