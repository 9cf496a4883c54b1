"""Opening files that may come from strangers: one gate in front of every image reader.

Every file a reader touches (the image, a detached ``.raw`` data file, each DICOM slice, a zip
member) passes :func:`check_file` first:

* it is resolved (every symlink followed) and ``stat``-ed **before** anything opens it: only
  regular files are read; FIFOs, sockets and devices are refused (opening a FIFO blocks forever),
  and nothing under ``/proc``, ``/sys`` or ``/dev`` is read;
* when :attr:`Limits.roots` is set (the agent server), the resolved file must lie inside a root;
* its size must stay under :attr:`Limits.max_file_bytes` when that is set.

Readers then check what a header *declares* (dims x voxel type) against :attr:`Limits.max_voxels`
and its spacing against :attr:`Limits.max_spacing_mm` before decoding a byte of voxel data, so a
78-byte header cannot make the process allocate gigabytes.

Defaults suit the command line; ``SAT_MAX_VOXELS`` and ``SAT_MAX_SPACING_MM`` override them. The
MCP server passes its own (``sat mcp --max-voxels``, ``--max-input-mb``) and its allowed roots.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from sat.errors import InputError

SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
DEFAULT_MAX_VOXELS = 512 * 2**20  # decoded voxels per volume (2 GiB as float32)
DEFAULT_MAX_SPACING_MM = 50.0  # larger voxels are no medical scan (a 300 mm voxel grid is an attack)
DEFAULT_MAX_UNPACKED_BYTES = 8 * 2**30  # what an archive may unpack to
DEFAULT_MAX_ZIP_RATIO = 200.0  # unpacked / packed bytes; DICOM zips are 1.5-10x, bombs 1000x


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r}: expected a positive number") from None
    if value <= 0:
        raise InputError(f"{name}={raw!r}: expected a positive number")
    return value


@dataclass(frozen=True)
class Limits:
    """What a reader may touch and allocate.

    Attributes:
        roots: resolved folders every file must lie in; empty: anywhere (the CLI's user owns the files).
        max_voxels: most voxels a volume may declare (all channels), checked before decoding.
        max_spacing_mm: largest voxel edge accepted.
        max_file_bytes: largest single file (or DICOM folder total); None: no limit.
        max_unpacked_bytes: most bytes an archive may unpack to (counted while unpacking).
        max_zip_ratio: largest unpacked/packed ratio of an archive member.
        tmp_dir: where archives are unpacked (None: the system temp folder).
    """

    roots: tuple[Path, ...] = ()
    max_voxels: int = DEFAULT_MAX_VOXELS
    max_spacing_mm: float = DEFAULT_MAX_SPACING_MM
    max_file_bytes: int | None = None
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_zip_ratio: float = DEFAULT_MAX_ZIP_RATIO
    tmp_dir: Path | None = field(default=None, compare=False)

    @classmethod
    def from_env(cls, **overrides) -> Limits:
        """Defaults, with ``SAT_MAX_VOXELS`` / ``SAT_MAX_SPACING_MM`` from the environment."""
        base = cls(max_voxels=int(_env_number("SAT_MAX_VOXELS", DEFAULT_MAX_VOXELS)),
                   max_spacing_mm=_env_number("SAT_MAX_SPACING_MM", DEFAULT_MAX_SPACING_MM))
        return replace(base, **overrides)

    def with_roots(self, roots) -> Limits:
        return replace(self, roots=tuple(Path(os.path.realpath(os.fspath(r))) for r in roots))

    def inside(self, real: Path) -> bool:
        """Whether a resolved path lies in a root (always true without roots)."""
        return not self.roots or any(real == r or r in real.parents for r in self.roots)


def _system_path(real: Path) -> bool:
    return any(real == t or t in real.parents for t in SYSTEM_TREES)


def check_file(path: str | os.PathLike, limits: Limits, *, what: str | None = None) -> Path:
    """Resolve ``path`` and check it may be read; return its real path.

    Raises:
        InputError: missing, not a regular file (FIFO, socket, device, folder), a system file,
            outside the allowed roots, or larger than the limit.
    """
    shown = what or os.fspath(path)
    real = Path(os.path.realpath(os.fspath(path)))
    if _system_path(real):
        raise InputError(f"{shown}: resolves to {str(real)!r}, a system file; refusing to read it")
    if not limits.inside(real):
        raise InputError(f"{shown}: resolves to {str(real)!r}, outside the allowed roots")
    try:
        st = os.stat(real)  # the symlink-free path: stat sees the file itself, opening nothing
    except OSError as exc:
        raise InputError(f"{shown}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file")
        raise InputError(f"{shown}: is {kind}; only regular files are read")
    if limits.max_file_bytes is not None and st.st_size > limits.max_file_bytes:
        raise InputError(f"{shown}: {st.st_size} bytes, more than the {limits.max_file_bytes} byte limit")
    return real


def check_tree(folder: str | os.PathLike, limits: Limits) -> list[Path]:
    """Check every file under ``folder`` (links followed to their targets, which are checked too).

    Returns:
        The real paths of the regular files, in walk order.

    Raises:
        InputError: any entry that is not a regular file or folder (e.g. a FIFO among DICOM
            slices, which would otherwise be skipped silently), or that leaves the roots.
    """
    folder = Path(folder)
    real_folder = Path(os.path.realpath(folder))
    if not limits.inside(real_folder) or _system_path(real_folder):
        raise InputError(f"{folder}: resolves to {str(real_folder)!r}, outside the allowed roots")
    files, total = [], 0
    for root, dirs, names in os.walk(real_folder):  # does not descend into folder symlinks
        for name in names:
            real = check_file(os.path.join(root, name), limits)
            total += real.stat().st_size
            if limits.max_file_bytes is not None and total > limits.max_file_bytes:
                raise InputError(f"{folder}: its files exceed the {limits.max_file_bytes} byte limit")
            files.append(real)
    return files


def open_regular(path: str | os.PathLike, limits: Limits):
    """Open a checked regular file for binary reading without ever blocking on a FIFO.

    ``O_NONBLOCK`` makes the open itself return at once even if the file was swapped for a FIFO
    after :func:`check_file`; ``fstat`` on the open descriptor then proves it is a regular file.
    """
    real = check_file(path, limits)
    fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path}: changed into a non-regular file while being opened")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_voxels(shape, limits: Limits, source: str) -> int:
    """Refuse a declared shape whose voxel count (Python ints: no overflow) exceeds the limit."""
    n = 1
    for d in shape:
        d = int(d)
        if d < 0:
            raise InputError(f"{source}: negative dimension {d} in the header")
        n *= d
    if n > limits.max_voxels:
        dims = "x".join(str(int(d)) for d in shape)
        raise InputError(f"{source}: header declares {dims} = {n} voxels, more than the limit of "
                         f"{limits.max_voxels} (SAT_MAX_VOXELS, or sat mcp --max-voxels)")
    return n


def check_spacing(spacing, limits: Limits, source: str) -> None:
    """Refuse voxels larger than ``max_spacing_mm`` (a few such voxels span a huge model grid)."""
    big = [float(s) for s in spacing if not float(s) <= limits.max_spacing_mm]
    if big:
        raise InputError(f"{source}: voxel spacing {[round(float(s), 4) for s in spacing]} mm exceeds the "
                         f"{limits.max_spacing_mm:g} mm limit (SAT_MAX_SPACING_MM)")
