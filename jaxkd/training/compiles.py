"""Counting what a run compiles: XLA compilations, persistent-cache hits and
the seconds spent (from ``jax.monitoring`` events), for ``results.json``.

    with CompileLog() as compiles:
        ...
    compiles.summary()  # {"compilations": 12, "compile_s": 8.3, "cache_hits": 4, "trace_s": 1.1}

and turning on the persistent compilation cache (:func:`use_persistent_cache`).
"""

from __future__ import annotations

import os
import threading

import jax
from jax import monitoring

_EVENTS = {
    "/jax/core/compile/backend_compile_duration": ("compilations", "compile_s"),
    "/jax/compilation_cache/cache_retrieval_time_sec": ("cache_hits", "cache_load_s"),
    "/jax/core/compile/jaxpr_trace_duration": ("traces", "trace_s"),
}
_ACTIVE: list["CompileLog"] = []
_LOCK = threading.Lock()
_REGISTERED = False


def _listener(event: str, seconds: float, **_) -> None:
    names = _EVENTS.get(event)
    if names is None:
        return
    with _LOCK:
        for log in _ACTIVE:
            log.counts[names[0]] += 1
            log.counts[names[1]] += seconds


class CompileLog:
    """Counts compilation events while active (nested logs all count)."""

    def __init__(self):
        self.counts = {name: 0 for pair in _EVENTS.values() for name in pair}

    def __enter__(self) -> "CompileLog":
        global _REGISTERED
        with _LOCK:
            if not _REGISTERED:
                monitoring.register_event_duration_secs_listener(_listener)
                _REGISTERED = True
            _ACTIVE.append(self)
        return self

    def __exit__(self, *exc) -> None:
        with _LOCK:
            _ACTIVE.remove(self)

    def summary(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.counts.items()}


def use_persistent_cache(setting: str) -> str | None:
    """Turns on JAX's persistent compilation cache, so that a later process
    running the same programs loads them instead of compiling them again.

    ``setting``: ``"auto"`` (``$XDG_CACHE_HOME/jaxkd/xla``, else
    ``~/.cache/jaxkd/xla``), a directory, or ``""`` (off). A directory chosen
    before (``JAX_COMPILATION_CACHE_DIR``, or an earlier ``jax.config`` update)
    is kept. Returns the directory in use, or None.
    """
    chosen = os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir
    if chosen:
        return chosen
    if not setting:
        return None
    if setting == "auto":
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        setting = os.path.join(base, "jaxkd", "xla")
    jax.config.update("jax_compilation_cache_dir", setting)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return setting
