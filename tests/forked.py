"""Training runs in real subprocesses that start with jaxkd already imported.

A fresh interpreter spends about 4 s importing jax, flax, orbax and jaxkd
before its first step. The tests that kill runs need a process per kill, so
they fork each one from a server process that imported those modules once
(multiprocessing's forkserver, which has initialised no jax backend and runs
no thread when it forks). A child is an ordinary process: the kernel kills it
with SIGKILL, and it compiles (from the persistent cache) and trains on its
own.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

_PRELOAD = ["jaxkd.training.loop", "tests.runs"]
_context = None


def _server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(_PRELOAD)
    return _context


def _train(ckpt: str, data: str, changes: dict, workdir: str, env: dict, stderr: str) -> None:
    os.environ.update(env)  # before the run reads JAXKD_KILL_AT
    with open(stderr, "w") as err:
        os.dup2(err.fileno(), 2)
    from jaxkd.training.loop import run
    from tests.runs import tiny_config

    run(tiny_config(ckpt, data, **changes), Path(workdir))


def start_run(ckpt: Path, data: Path, changes: dict, workdir: Path, **env) -> multiprocessing.Process:
    """Starts ``run(tiny_config(ckpt, data, **changes), workdir)`` in a forked
    process with ``env`` added to its environment; its standard error goes
    to ``<workdir>.stderr`` (see :func:`stderr_of`)."""
    args = (str(ckpt), str(data), changes, str(workdir), env, stderr_of(workdir))
    proc = _server().Process(target=_train, args=args)
    proc.start()
    return proc


def stderr_of(workdir: Path) -> str:
    return str(workdir) + ".stderr"
