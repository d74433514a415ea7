"""Checkpoints: ``mg.save(state_dict, path)`` and ``mg.load(path)`` on NumPy's ``.npz`` format.

A checkpoint holds plain numeric arrays only and is read with ``allow_pickle=False``, so loading
one can never run code. ``save`` writes a temporary file next to the target and renames it over
the target in one step, so a crash mid-write leaves the previous checkpoint intact rather than
half a file. ``load`` reads and checks every array before returning anything.
"""
from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np

from .core.tensor import Tensor, as_array

__all__ = ["save", "load", "CheckpointError"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupted or not a checkpoint."""


def _as_array(name: str, value) -> np.ndarray:
    array = np.asarray(as_array(value))
    if array.dtype.kind not in "biuf":
        raise TypeError(f"save: entry {name!r} has dtype {array.dtype}; a checkpoint holds "
                        f"only bool, integer and floating arrays")
    return array


def save(state_dict, path) -> None:
    """Write ``state_dict`` (name -> Tensor, array or number) to ``path`` as an ``.npz`` file.

    dtypes and shapes are kept exactly (float32 weights stay float32, the int64 counter
    ``num_batches_tracked`` stays a 0-d int64). The path is used as given.
    """
    path = os.fspath(path)
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save: expected a state dict (name -> tensor), got "
                        f"{type(state_dict).__name__}")
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"save: state dict keys must be non-empty strings, got {name!r}")
        arrays[name] = _as_array(name, value)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-",
                                         suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
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


def load(path) -> dict:
    """Read a checkpoint written by ``save``: a dict name -> ``np.ndarray``, in saved order.

    Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` (a ValueError)
    naming the path for anything that is not an intact checkpoint.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no checkpoint at {path!r}")
    try:
        archive = np.load(path, allow_pickle=False)
        if isinstance(archive, np.lib.npyio.NpzFile):
            with archive:
                # NpzFile reads lazily; reading every entry now is what finds a bad CRC or a
                # truncated member, before the caller gets (and assigns) anything.
                return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError) as error:
        raise CheckpointError(f"load: {path!r} is not a readable checkpoint (truncated, "
                              f"corrupted or not an .npz file): {error}") from None
    raise CheckpointError(f"load: {path!r} holds a single array, not a checkpoint (an .npz "
                          f"archive of named arrays)")
