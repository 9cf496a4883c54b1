"""What an agent may touch: allowed roots, path checks, size limits, per-call folders, timeouts.

Every path an agent passes is checked here before anything opens it:

* it must be a non-empty string without NUL bytes and without ``..`` components (traversal is
  refused even when it would land back inside a root, so a refusal never depends on the tree);
* relative paths are taken from the first allowed root; ``~`` is not expanded;
* after following every symlink (``os.path.realpath``) it must lie inside an allowed root, whose
  own symlinks are resolved the same way, so a link inside a root that points outside is refused;
* files and folders must exist and stay under a byte limit.

Tool outputs go to a fresh per-call folder under the output root, which is itself inside an
allowed root, so later calls can read them back. Nothing here ever runs a shell.
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sat.errors import InputError

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

    def call_dir(self, tool: str) -> Path:
        """Create and return a fresh output folder for one call of ``tool``."""
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = self.out_root / f"{stamp}_{tool}_{uuid.uuid4().hex[:8]}"
        try:
            out.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise InputError(f"cannot create output folder {str(out)!r} ({type(exc).__name__})") from None
        real = Path(os.path.realpath(out))
        if not self._inside(real):  # the output root was swapped for a link after start-up
            raise PathRefused(f"output folder {str(out)!r} resolves outside the allowed roots")
        return real


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


class TimedRunner:
    """Runs callables in worker threads with a wall-clock limit per call.

    A thread cannot be killed, so a call that times out keeps its worker until it finishes; its
    result is dropped. The caller gets :class:`ToolTimeout` at the limit and the server keeps
    serving. Model access is serialised by the callers (one lock per model).
    """

    def __init__(self, workers: int = 4) -> None:
        self._pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sat-tool")

    def run(self, fn: Callable[[], Any], timeout_s: float, name: str) -> Any:
        future = self._pool.submit(fn)
        try:
            return future.result(timeout=timeout_s)
        except cf.TimeoutError:
            future.cancel()
            raise ToolTimeout(f"{name}: no result within {timeout_s:g} s (limit per call)") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
