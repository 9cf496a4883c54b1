"""How many CPU threads inference uses.

On a machine whose cores are busy with other work, every multi-threaded PyTorch op waits for all of
its threads to be scheduled, and small ops become tens of times slower than on one thread (measured
here: a 70k-element flip takes 0.3 ms on one thread and 20 ms on two with a load of 7 on 2 cores).
``"auto"`` therefore probes the machine: it times one parallel op on all threads and on one, and
keeps one thread when the parallel run is more than twice slower in any of three rounds.
``SAT_NUM_THREADS`` overrides the choice.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

import torch

_PROBE_EVERY_S = 60.0
_state: dict = {"at": -1e9, "threads": None}


def _time_ops(threads: int, x: torch.Tensor, ops: int = 20) -> float:
    """Seconds for ``ops`` small parallel ops: dominated by thread wake-ups when cores are busy."""
    torch.set_num_threads(threads)
    t = time.perf_counter()
    for _ in range(ops):
        x.mul_(1.0)
    return time.perf_counter() - t


def probe_threads(max_threads: int | None = None, rounds: int = 3) -> int:
    """Threads worth using now: ``max_threads`` (torch's default) unless the cores are contended."""
    old = torch.get_num_threads()
    n = max_threads or old
    if n <= 1:
        return 1
    x = torch.ones(2**18)  # above ATen's grain size, so each op is split across threads
    try:
        _time_ops(1, x, 2)  # warm up
        for _ in range(rounds):  # load comes in bursts: one contended round is enough to back off
            if _time_ops(n, x) > 2.0 * _time_ops(1, x):
                return 1
    finally:
        torch.set_num_threads(old)
    return n


def resolve_threads(threads: int | str | None) -> int | None:
    """``None``: leave torch alone; an int: that many; ``"auto"``: $SAT_NUM_THREADS or a cached probe."""
    if threads is None:
        return None
    if threads != "auto":
        value = int(threads)
        if value < 1:
            raise ValueError(f"threads must be >= 1 or 'auto', got {threads!r}")
        return value
    env = os.environ.get("SAT_NUM_THREADS")
    if env:
        return max(1, int(env))
    now = time.monotonic()
    if _state["threads"] is None or now - _state["at"] > _PROBE_EVERY_S:
        _state.update(at=now, threads=probe_threads())
    return _state["threads"]


@contextmanager
def cpu_threads(n: int | None):
    """Run the block with ``n`` torch CPU threads (unchanged when ``None``), then restore."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
