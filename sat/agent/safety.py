"""What an agent may touch: allowed roots, path checks, size limits, per-call folders, timeouts.

Every path an agent passes is checked here before anything opens it:

* it must be a non-empty string without NUL bytes and without ``..`` components (traversal is
  refused even when it would land back inside a root, so a refusal never depends on the tree);
* relative paths are taken from the first allowed root; ``~`` is not expanded;
* after following every symlink (``os.path.realpath``) it must lie inside an allowed root, whose
  own symlinks are resolved the same way, so a link inside a root that points outside is refused;
* files and folders must exist, be regular files or folders (never a FIFO, socket or device) and
  stay under a byte limit;
* readers then open every file they touch through :mod:`sat.safe_open` with :meth:`SafetyPolicy.limits`:
  a detached data file, each DICOM slice and each zip member is checked against the roots too, and
  header-declared sizes against ``max_voxels`` before anything is decoded.

Tool outputs go to a fresh per-call folder under the output root, which is itself inside an
allowed root, so later calls can read them back. Nothing here ever runs a shell.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import stat
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sat.errors import InputError
from sat.safe_open import Limits

MAX_PATH_CHARS = 4096


class PathRefused(InputError):
    """A path argument that is outside the allowed roots, malformed or too large."""


class ToolTimeout(InputError):
    """A tool call that ran past its time limit."""


@dataclass
class SafetyPolicy:
    """Limits applied to every tool call.

    Attributes:
        allowed_roots: folders the agent may read from and write to (resolved when used).
        output_root: where per-call output folders go; default: ``<first root>/sat_agent_runs``.
        max_input_bytes: largest image/mask file (or DICOM folder total) accepted.
        max_voxels: largest decoded volume accepted (voxels).
        max_prompts: most prompts in one ``segment`` call.
        max_text_chars: longest free text (report, prompt, query) accepted.
        timeout_s: wall-clock limit of one tool call.
    """

    allowed_roots: list[str | os.PathLike] = field(default_factory=list)
    output_root: str | os.PathLike | None = None
    max_input_bytes: int = 2 * 2**30
    max_voxels: int = 400_000_000
    max_prompts: int = 32
    max_text_chars: int = 20_000
    timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if not self.allowed_roots:
            raise InputError("no allowed root given: pass at least one --allow-root DIR")
        roots = []
        for raw in self.allowed_roots:
            root = Path(os.path.realpath(os.fspath(raw)))
            if not root.is_dir():
                raise InputError(f"allowed root {os.fspath(raw)!r} is not an existing folder")
            roots.append(root)
        self.roots: list[Path] = list(dict.fromkeys(roots))
        if self.timeout_s <= 0:
            raise InputError(f"timeout_s={self.timeout_s}: expected a positive number of seconds")
        out = Path(os.path.realpath(os.fspath(self.output_root))) if self.output_root else \
            self.roots[0] / "sat_agent_runs"
        if not self._inside(out):
            raise InputError(f"output root {str(out)!r} is not inside an allowed root")
        self.out_root = out

    def _inside(self, path: Path) -> bool:
        return any(path == r or r in path.parents for r in self.roots)

    def resolve(self, raw: Any, *, what: str = "path", kind: str = "any") -> Path:
        """Check one path argument and return its real (symlink-free) absolute path.

        Args:
            raw: the argument as the agent sent it.
            what: argument name, used in messages.
            kind: ``"file"``, ``"dir"`` or ``"any"`` (file or folder).

        Raises:
            PathRefused: malformed, traversal, outside every root, missing, wrong kind or too big.
        """
        if not isinstance(raw, str) or not raw.strip():
            raise PathRefused(f"{what}: expected a non-empty path string")
        if "\x00" in raw or len(raw) > MAX_PATH_CHARS:
            raise PathRefused(f"{what}: malformed path (NUL byte or longer than {MAX_PATH_CHARS} chars)")
        parts = raw.replace("\\", "/").split("/")
        if ".." in parts:
            raise PathRefused(f"{what}: {raw!r} contains '..'; parent traversal is not allowed")
        candidate = Path(raw) if os.path.isabs(raw) else self.roots[0] / raw
        real = Path(os.path.realpath(candidate))
        if not self._inside(real):
            shown = ", ".join(str(r) for r in self.roots)
            link = " (it is or passes through a symlink that leaves the root)" if \
                Path(os.path.abspath(candidate)) != real and self._inside(Path(os.path.abspath(candidate))) else ""
            raise PathRefused(f"{what}: {raw!r} is outside the allowed roots [{shown}]{link}")
        if not real.exists():
            raise PathRefused(f"{what}: {raw!r} does not exist")
        mode = real.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise PathRefused(f"{what}: {raw!r} is not a regular file or folder (FIFO, socket or device)")
        if kind == "file" and not real.is_file():
            raise PathRefused(f"{what}: {raw!r} is not a file")
        if kind == "dir" and not real.is_dir():
            raise PathRefused(f"{what}: {raw!r} is not a folder")
        size = _size(real, self.max_input_bytes)
        if size > self.max_input_bytes:
            raise PathRefused(f"{what}: {raw!r} is larger than the {self.max_input_bytes // 2**20} MiB limit")
        return real

    def check_text(self, text: str, what: str) -> str:
        """Refuse free text longer than ``max_text_chars``; return it unchanged otherwise."""
        if len(text) > self.max_text_chars:
            raise InputError(f"{what}: {len(text)} characters, more than the {self.max_text_chars} limit")
        return text

    def limits(self) -> Limits:
        """The reader limits of this policy: its roots, voxel and byte limits; archives unpack
        under the output root (inside the roots), never in the system temp folder."""
        return Limits.from_env(roots=tuple(self.roots), max_voxels=self.max_voxels,
                               max_file_bytes=self.max_input_bytes,
                               max_unpacked_bytes=max(self.max_input_bytes, 2**30),
                               tmp_dir=self.out_root / ".unpack")

    def call_dir(self, tool: str, tag: str | None = None) -> Path:
        """Create and return a fresh output folder for one call of ``tool``.

        The output root is resolved and checked against the roots *before* anything is created,
        so a root swapped for a link that leaves the roots never gets a folder made outside.
        ``tag`` (default: random) ends the folder name, so a supervisor can find the folders of a
        call it abandoned.
        """
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        parent = Path(os.path.realpath(self.out_root))
        if not self._inside(parent):  # the output root was swapped for a link after start-up
            raise PathRefused(f"output root {str(self.out_root)!r} resolves outside the allowed roots")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            out = parent / f"{stamp}_{tool}_{tag or uuid.uuid4().hex[:8]}"
            out.mkdir(exist_ok=False)
        except OSError as exc:
            raise InputError(f"cannot create an output folder in {str(parent)!r} ({type(exc).__name__})") from None
        real = Path(os.path.realpath(out))
        if not self._inside(real):  # swapped between the check and the mkdir
            raise PathRefused(f"output folder {str(out)!r} resolves outside the allowed roots")
        return real

    def remove_call_dirs(self, tag: str) -> int:
        """Delete the output folders of the call tagged ``tag`` (work that was abandoned)."""
        parent = Path(os.path.realpath(self.out_root))
        gone = 0
        if parent.is_dir() and self._inside(parent):
            for folder in parent.glob(f"*_{tag}"):
                shutil.rmtree(folder, ignore_errors=True)
                gone += 1
        return gone


def _size(path: Path, limit: int) -> int:
    """Bytes of a file, or of a folder's files (stops counting once past ``limit``)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):  # os.walk does not follow folder symlinks
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
            if total > limit:
                return total
    return total


_CALL = threading.local()


def abandoned() -> bool:
    """Whether the call running in this thread was given up by :class:`TimedRunner`."""
    token = getattr(_CALL, "token", None)
    return token is not None and token.is_set()


def ensure_live(what: str = "call") -> None:
    """Raise :class:`ToolTimeout` in abandoned work, before it writes anything."""
    if abandoned():
        raise ToolTimeout(f"{what}: abandoned after its time limit; nothing written")


class TimedRunner:
    """Runs callables in daemon threads with a wall-clock limit per call (in-process use).

    A thread cannot be killed, so a call that times out is *abandoned*: its caller gets
    :class:`ToolTimeout`, the thread's token is set so the tool writes no results
    (:func:`ensure_live`), and the daemon thread never keeps the process from exiting. The MCP
    server does better: it runs tools in a child process that it kills
    (:class:`sat.agent.worker.IsolatedDispatcher`).
    """

    def run(self, fn: Callable[[], Any], timeout_s: float, name: str) -> Any:
        token, box = threading.Event(), {}

        def target() -> None:
            _CALL.token = token
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"sat-tool-{name}", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            token.set()
            raise ToolTimeout(f"{name}: no result within {timeout_s:g} s (limit per call)")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def close(self) -> None:
        """Nothing to release: abandoned threads are daemons."""
