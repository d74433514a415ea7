"""Checkpoints: ``mg.save(state_dict, path)`` and ``mg.load(path)`` on NumPy's ``.npz`` format.

A checkpoint is a zip archive with one ``<name>.npy`` member per entry, as ``np.savez`` writes
it, so ``np.load`` reads it too. minigrad writes the members itself rather than through
``np.savez(file, **arrays)``, whose keyword arguments would swallow entries named ``file`` or
``allow_pickle``: every string key round-trips.

Safety, in both directions:

* ``save`` checks every entry before writing anything, writes a temporary file next to the
  target and renames it over the target in one step, so a bad entry or a crash mid-write leaves
  the previous checkpoint intact rather than half a file.
* ``load`` never unpickles (object arrays are refused), and refuses a member whose declared size
  -- the zip entry's uncompressed size, then the ``.npy`` header's shape times item size --
  would take the total beyond ``max_bytes`` (1 GiB unless raised), before reading its data. A
  zip bomb or a header declaring 10**12 elements is a clear error, not a MemoryError. Every
  array is read and checked (sizes, CRC) before anything is returned.
"""
from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np
from numpy.lib import format as npy_format

from .core.checks import ArgumentTypeError, bad_argument, positive_int
from .core.tensor import Tensor

__all__ = ["save", "load", "CheckpointError", "DEFAULT_MAX_BYTES"]

#: What ``load`` reads at most (the arrays' bytes, all members together) unless told otherwise.
DEFAULT_MAX_BYTES = 2 ** 30

# The dtypes a checkpoint holds: bool, integers, floats, complex. Never objects (pickles),
# strings, dates or structured records.
_NUMERIC_KINDS = "biufc"
_SUFFIX = ".npy"
# The largest .npy header ``load`` reads (NumPy's own default limit), plus the magic string,
# version and length fields in front of it.
_MAX_HEADER = 10000 + 12
_CHUNK = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupted, not a checkpoint, or
    declaring more data than ``load`` was allowed to read."""


# ----------------------------------------------------------------------------------------------
# save
# ----------------------------------------------------------------------------------------------

def _path(owner: str, path) -> str:
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        bad_argument(owner, "path", "a file path (a str or os.PathLike)", path, ArgumentTypeError)


def _member_name(name) -> str:
    """The zip member that holds entry ``name``, checked to come back as ``name`` on loading."""
    if not isinstance(name, str):
        bad_argument("mg.save", "state_dict keys", "strings (names such as '0.weight')", name,
                     ArgumentTypeError)
    member = name + _SUFFIX
    # A zip member name cannot hold a NUL (zipfile cuts the name there) and is stored as UTF-8
    # (a lone surrogate has no encoding): such a key would not come back as it was saved.
    try:
        member.encode("utf-8")
    except UnicodeEncodeError:
        bad_argument("mg.save", "state_dict keys", "strings that encode as UTF-8", name)
    if zipfile.ZipInfo(member).filename != member:
        bad_argument("mg.save", "state_dict keys", "strings a zip member name can hold "
                     "(no NUL characters)", name)
    return member


def _saveable(name: str, value) -> np.ndarray:
    """``value`` (a Tensor, a NumPy array or a number) as an array of numbers."""
    if isinstance(value, Tensor):
        value = value.data
    if not isinstance(value, (np.ndarray, np.generic, bool, int, float, complex)):
        bad_argument("mg.save", f"state_dict[{name!r}]", "a Tensor, a NumPy array or a number",
                     value, ArgumentTypeError)
    array = np.asarray(value)
    if array.dtype.kind not in _NUMERIC_KINDS:
        # An int beyond int64 becomes an object array here; so does an object array given as is.
        raise ArgumentTypeError(f"mg.save: entry {name!r} has dtype {array.dtype}; a checkpoint "
                                f"holds only bool, integer, floating and complex arrays")
    return array


def save(state_dict, path) -> None:
    """Write ``state_dict`` (a dict: name -> Tensor, NumPy array or number) to ``path`` as an
    ``.npz`` file.

    Every string key round-trips, whatever it is (``"file"``, ``"allow_pickle"``, ``"a/b"``,
    ``""``), except the few no zip member name can hold (a NUL character, a lone surrogate).
    dtypes and shapes are kept exactly (float32 weights stay float32, the int64 counter
    ``num_batches_tracked`` stays a 0-d int64). The path is used as given.

    Raises TypeError for a key that is not a string or a value that is not an array of numbers
    (None, a string, an object array), ValueError for a key no zip can hold -- in every case
    before anything is written, so a file already at ``path`` stays as it was.
    """
    path = _path("mg.save", path)
    if not hasattr(state_dict, "items"):
        bad_argument("mg.save", "state_dict", "a dict of name -> Tensor or array (a state dict)",
                     state_dict, ArgumentTypeError)
    members = [(_member_name(name), _saveable(name, value))
               for name, value in state_dict.items()]
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"mg.save: cannot write {path!r}: the directory {directory!r} "
                                f"does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"mg.save: cannot write {path!r}: it is a directory")
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-",
                                         suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as file:
            with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                for member, array in members:
                    # A fixed timestamp: the same state dict always gives the same bytes.
                    info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
                    with archive.open(info, "w", force_zip64=True) as stream:
                        npy_format.write_array(stream, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private (0600); give it the permissions open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


# ----------------------------------------------------------------------------------------------
# load
# ----------------------------------------------------------------------------------------------

def _too_large(path: str, name: str, what: str, declared: int, used: int,
               max_bytes: int) -> CheckpointError:
    already = f" after {used} bytes of earlier entries" if used else ""
    return CheckpointError(
        f"mg.load: {path!r}: entry {name!r} declares {what} of {declared} bytes{already}, "
        f"beyond the limit max_bytes={max_bytes}{_in_units(max_bytes)}. If you trust "
        f"this file, raise the limit: mg.load(path, max_bytes={_round_up(declared + used)})")


def _in_units(n: int) -> str:
    """" (1 GiB)" for 2**30 bytes: a size easier to read than its digits."""
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f" ({n / size:.4g} {unit})"
    return ""


def _round_up(n: int) -> int:
    """The next power of two at or above ``n`` (a limit to suggest)."""
    return 1 << max(n - 1, 1).bit_length()


def _read_header(stream, path: str, name: str):
    """Shape, Fortran order and dtype from the ``.npy`` header at the start of ``stream``."""
    version = npy_format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = npy_format.read_array_header_2_0(stream)
    else:
        raise CheckpointError(f"mg.load: {path!r}: entry {name!r} is a .npy version "
                              f"{version[0]}.{version[1]}, which a checkpoint never uses")
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
        # Object arrays would need unpickling, which could run code: never.
        raise CheckpointError(f"mg.load: {path!r}: entry {name!r} has dtype {dtype}; a "
                              f"checkpoint holds only arrays of numbers (object arrays, which "
                              f"need pickle, are never loaded)")
    return shape, fortran, dtype


def _read_exactly(stream, array: np.ndarray, path: str, name: str) -> None:
    """Fill ``array`` from ``stream`` chunk by chunk; the stream must then be at its end."""
    buffer = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
    position = 0
    while position < len(buffer):
        count = stream.readinto(buffer[position:position + _CHUNK])
        if not count:
            raise CheckpointError(f"mg.load: {path!r}: entry {name!r} ends after {position} of "
                                  f"its {len(buffer)} bytes (truncated)")
        position += count
    if stream.read(1):
        raise CheckpointError(f"mg.load: {path!r}: entry {name!r} has data beyond the "
                              f"{len(buffer)} bytes its header declares")


class _Counted:
    """A stream that counts the bytes read from it (the length of a .npy header)."""

    def __init__(self, stream):
        self.stream, self.count = stream, 0

    def read(self, size=-1):
        data = self.stream.read(size)
        self.count += len(data)
        return data


def _read_member(archive, info, path: str, name: str, used: int, max_bytes: int):
    """The array in one member, refusing it before its data is read if it is too large."""
    with archive.open(info) as stream:
        header = _Counted(stream)
        shape, fortran, dtype = _read_header(header, path, name)
        count = 1
        for length in shape:
            count *= length  # Python ints: 10**12 elements is a number, not an overflow
        declared = count * dtype.itemsize
        if used + declared > max_bytes:
            raise _too_large(path, name, f"an array of shape {shape} and dtype {dtype}",
                             declared, used, max_bytes)
        # The header and the zip entry must agree on the size before memory is set aside: a
        # header may declare far more than the member holds.
        if declared != info.file_size - header.count:
            raise CheckpointError(f"mg.load: {path!r}: entry {name!r} declares an array of "
                                  f"shape {shape} and dtype {dtype} ({declared} bytes) but holds "
                                  f"{info.file_size - header.count} bytes of data")
        array = np.empty(count, dtype=dtype)
        _read_exactly(stream, array, path, name)
    if fortran:
        return array.reshape(shape[::-1]).transpose(), declared
    return array.reshape(shape), declared


def load(path, max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """Read a checkpoint written by ``save``: a dict name -> ``np.ndarray``, in saved order.

    ``max_bytes`` (default ``DEFAULT_MAX_BYTES``, 1 GiB) bounds the bytes of all arrays
    together. Each entry's declared size is checked against it before the entry is read, so a
    hostile or damaged file cannot exhaust memory; pass a larger ``max_bytes`` for a larger
    checkpoint you trust.

    Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` (a ValueError)
    naming the path for anything that is not an intact checkpoint within the limit. Nothing is
    ever unpickled.
    """
    path = _path("mg.load", path)
    max_bytes = positive_int("mg.load", "max_bytes", max_bytes)
    if not os.path.exists(path):
        raise FileNotFoundError(f"mg.load: no checkpoint at {path!r}")
    try:
        with open(path, "rb") as file:
            if file.read(len(npy_format.MAGIC_PREFIX)) == npy_format.MAGIC_PREFIX:
                raise CheckpointError(f"mg.load: {path!r} holds a single array, not a "
                                      f"checkpoint (an .npz archive of named arrays)")
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                return _read_archive(archive, path, max_bytes)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError, RuntimeError,
            NotImplementedError) as error:
        # BadZipFile: not a zip, a bad CRC; ValueError: a bad .npy header; RuntimeError: an
        # encrypted member; NotImplementedError: an unknown compression method.
        raise CheckpointError(f"mg.load: {path!r} is not a readable checkpoint (truncated, "
                              f"corrupted or not an .npz file): {error}") from None


def _read_archive(archive, path: str, max_bytes: int) -> dict:
    infos = archive.infolist()
    names = []
    declared = 0
    # First every member's name and declared uncompressed size, before any data is read: a
    # zip bomb is refused here. Each member also holds a .npy header of at most _MAX_HEADER.
    for info in infos:
        if info.is_dir() or not info.filename.endswith(_SUFFIX):
            raise CheckpointError(f"mg.load: {path!r}: member {info.filename!r} is not an "
                                  f".npy array; a checkpoint holds only <name>.npy members")
        name = info.filename[:-len(_SUFFIX)]
        if name in names:
            raise CheckpointError(f"mg.load: {path!r}: entry {name!r} appears twice")
        names.append(name)
        data = max(info.file_size - _MAX_HEADER, 0)
        if declared + data > max_bytes:
            raise _too_large(path, name, "an uncompressed size", info.file_size, declared,
                             max_bytes)
        declared += data
    state = {}
    used = 0
    for info, name in zip(infos, names):
        state[name], size = _read_member(archive, info, path, name, used, max_bytes)
        used += size
    return state
