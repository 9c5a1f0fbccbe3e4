"""Counting what a run compiles: XLA compilations, persistent-cache hits and
the seconds spent (from ``jax.monitoring`` events), for ``results.json``.

    with CompileLog() as compiles:
        ...
    compiles.summary()  # {"compilations": 12, "compile_s": 8.3, "cache_hits": 4, "trace_s": 1.1}
"""

from __future__ import annotations

import threading

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
