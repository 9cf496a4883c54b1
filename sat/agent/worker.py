"""Tool calls in a child process that the server can kill: the MCP server's dispatcher.

A thread blocked in a read or busy in a huge computation cannot be stopped, and while it holds the
model every later call would wait. :class:`IsolatedDispatcher` therefore loads the model in a
child process (``multiprocessing`` spawn) and sends it one call at a time. When a call runs past
the policy's limit the child is killed, the output folders of that call are deleted (so abandoned
work leaves no results), the caller gets a timeout error, and a fresh child loads the model for
the next call. Closing the dispatcher (the server's stdin reached EOF) kills the child, so the
process exits promptly.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

from sat.agent.safety import SafetyPolicy
from sat.agent.tools import ToolFailure, ToolReply
from sat.errors import InputError

log = logging.getLogger(__name__)
STARTUP_TIMEOUT_S = 600.0  # loading the model in a fresh child (not counted in a call's limit)
_SLACK_S = 2.0  # the child's own reply may arrive just after the limit


def _policy_kwargs(policy: SafetyPolicy) -> dict[str, Any]:
    kwargs = {f.name: getattr(policy, f.name) for f in fields(policy)}
    kwargs["allowed_roots"] = [str(r) for r in policy.roots]
    kwargs["output_root"] = str(policy.out_root)
    return kwargs


def _serve(conn, checkpoint: str, policy_kwargs: dict, device: str, log_level: int) -> None:
    """Child process body: load the model, then answer ``(name, arguments, tag)`` messages."""
    os.dup2(2, 1)  # fd 1 is the MCP wire in the parent: nothing may reach it from here
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s[worker] %(message)s")
    from sat.agent.tools import Dispatcher

    try:
        dispatcher = Dispatcher.from_checkpoint(checkpoint, SafetyPolicy(**policy_kwargs), device=device,
                                                threaded=False)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        return
    conn.send(("ready", None))
    while True:
        try:
            name, arguments, tag = conn.recv()
        except (EOFError, OSError):
            return
        dispatcher.call_tag = tag
        try:
            reply = dispatcher.call(name, arguments)
            conn.send(("ok", {"data": reply.data, "images": [str(p) for p in reply.images]}))
        except ToolFailure as exc:
            conn.send(("error", str(exc)))


class IsolatedDispatcher:
    """The :class:`~sat.agent.tools.Dispatcher` interface, with every call run in a killable child.

    Args:
        checkpoint: model checkpoint the child loads.
        policy: roots and limits (``timeout_s`` is enforced here by killing the child).
        device: torch device for the child.
    """

    def __init__(self, checkpoint: str | Path, policy: SafetyPolicy, device: str = "auto") -> None:
        if not Path(checkpoint).is_file():
            raise InputError(f"checkpoint {str(checkpoint)!r} is not a file")
        self.policy = policy
        self._args = (str(checkpoint), _policy_kwargs(policy), device, logging.getLogger().level)
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._proc = self._conn = None
        self._ready = False
        self._start()
        try:
            self._await_ready(STARTUP_TIMEOUT_S)
        except ToolFailure as exc:
            self.close()
            raise InputError(str(exc)) from None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child, *self._args), name="sat-model-worker", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn, self._ready = proc, parent, False

    def _await_ready(self, timeout_s: float) -> None:
        if self._ready:
            return
        try:
            if not self._conn.poll(timeout_s):
                self._kill()
                raise ToolFailure(f"the model worker did not start within {timeout_s:g} s")
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            self._kill()
            raise ToolFailure("the model worker exited while loading the model") from None
        if kind != "ready":
            self._kill()
            raise ToolFailure(f"the model worker could not load the model: {payload}")
        self._ready = True

    def _kill(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._ready = False
        if conn is not None:
            conn.close()
        if proc is not None and proc.is_alive():
            proc.kill()
            proc.join(5)

    def call(self, name: str, arguments: dict | str | None) -> ToolReply:
        """Run one tool call in the child under the policy's time limit.

        Raises:
            ToolFailure: the tool failed, the model is busy with another call, or the call timed
                out (the child was killed and its output folders removed).
        """
        limit = self.policy.timeout_s
        if not self._lock.acquire(timeout=limit):
            raise ToolFailure("the model is busy with an earlier call; try again later")
        try:
            if self._proc is None or not self._proc.is_alive():
                self._kill()
                self._start()
            self._await_ready(STARTUP_TIMEOUT_S)
            tag = uuid.uuid4().hex[:12]
            start = time.monotonic()
            try:
                self._conn.send((name, arguments, tag))
                if not self._conn.poll(limit + _SLACK_S):
                    self._kill()
                    removed = self.policy.remove_call_dirs(tag)
                    log.warning("%s: killed the model worker after %.1f s; removed %d output folder(s)", name,
                                time.monotonic() - start, removed)
                    raise ToolFailure(f"{name}: no result within {limit:g} s (limit per call); the work was "
                                      "stopped and nothing was written")
                kind, payload = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                self._kill()
                self.policy.remove_call_dirs(tag)
                raise ToolFailure(f"{name}: the model worker stopped unexpectedly; it will be restarted") from None
        finally:
            self._lock.release()
        if kind == "ok":
            return ToolReply(payload["data"], [Path(p) for p in payload["images"]])
        raise ToolFailure(payload)

    def close(self) -> None:
        """Stop the child (pending calls fail at once)."""
        self._kill()
