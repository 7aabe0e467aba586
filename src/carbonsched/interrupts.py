"""Stop requests: SIGINT and SIGTERM end a run at its next safe point.

A signal sets one process-wide flag; it raises nothing. Every long HiGHS
solve checks the flag from its interrupt callback (see
:func:`carbonsched.highs.new_highs`) and every decomposition loop checks it
between iterations, so the run ends with its best schedule and bound
written, status ``interrupted``. A second signal while the first is being
handled raises :class:`KeyboardInterrupt` (the escape hatch).

Handlers are installed only inside :func:`handling_signals` (the CLI uses
it); importing this module changes nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["clear", "handling_signals", "reason", "request", "requested", "signal_name"]

_flag = threading.Event()
_reason: list[str] = []


def requested() -> bool:
    """True once a stop was requested (by a signal or :func:`request`)."""
    return _flag.is_set()


def request(reason: str = "stop requested") -> None:
    """Ask the run in progress to stop at its next safe point."""
    if not _flag.is_set():
        _reason.append(reason)
    _flag.set()


def reason() -> str | None:
    return _reason[0] if _reason else None


def clear() -> None:
    """Forget a request (before a new run in the same process)."""
    _flag.clear()
    _reason.clear()


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _handler(signum: int, frame) -> None:
    if _flag.is_set():
        raise KeyboardInterrupt(f"second {signal_name(signum)}: stopping at once")
    request(f"{signal_name(signum)} received")


@contextmanager
def handling_signals(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Within this block SIGINT/SIGTERM request a stop instead of killing
    the process; the previous handlers come back afterwards. Does nothing
    outside the main thread (Python delivers signals only there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear()
    old = {s: signal.signal(s, _handler) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
