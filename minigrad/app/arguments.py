"""What every ``minigrad`` command accepts on its command line, checked before any work.

The argparse ``type=`` functions here turn a word of the command line into a checked value
(``positive_int``, ``non_negative_int``, ``finite_positive_float``, ``writable_dir``,
``writable_file``); argparse reports a bad one as ``argument --epochs: must be a positive
integer, got 0`` and exits with status 2. A check that needs more than one argument (a batch
size against the training set) runs in the command's ``run`` before any work and raises
``UsageError``, which ``minigrad.app.cli`` reports the same way.

Every message comes from ``minigrad.core.checks``; argparse already names the argument, so
the checks' "<owner>: <name> " prefix is replaced by argparse's "argument <option>: ".
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from ..core import checks

__all__ = ["UsageError", "CommandLineExit", "positive_int", "non_negative_int",
           "finite_positive_float", "at_least", "writable_dir", "writable_file", "reject",
           "usage_error", "check_writable_dir", "check_writable_file", "make_dir",
           "make_parent_dir"]

# The owner and name the checks are called with; cut from their messages (see _reworded).
_OWNER, _NAME = "minigrad", "the value"


class UsageError(Exception):
    """A bad command line found in a command's ``run`` (before any work): the CLI prints its
    message under the command's usage and exits with status 2, as argparse does."""

    def __init__(self, option: str, message: str):
        super().__init__(f"argument {option}: {message}")
        self.option = option


class CommandLineExit(SystemExit):
    """How a bad command line ends: exit status 2, as argparse's, after the usage and a
    one-line error were printed on stderr. ``str()`` is that error line, so a caller of
    ``cli.main`` in the same process can read why."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _reworded(error: Exception) -> str:
    """A checks message without its owner and name: "must be ..., got ..."."""
    return str(error).removeprefix(f"{_OWNER}: {_NAME} ")


def _message(expected: str, got) -> str:
    """"must be <expected>, got <got>", worded by checks.bad_argument."""
    try:
        checks.bad_argument(_OWNER, _NAME, expected, got)
    except ValueError as error:
        return _reworded(error)


def reject(expected: str, got):
    """An argparse error saying what the argument must be."""
    raise argparse.ArgumentTypeError(_message(expected, got))


def usage_error(option: str, expected: str, got) -> UsageError:
    """The UsageError for ``option``: "argument <option>: must be <expected>, got <got>"."""
    return UsageError(option, _message(expected, got))


def _number(text: str, parse, check):
    """``text`` parsed by ``parse`` (int or float), then ``check(owner, name, value)`` of
    minigrad.core.checks; a word that is not a number goes to ``check`` as it is, which says
    so ("must be a positive integer, got 'abc'"). A failure becomes an argparse error."""
    try:
        value = parse(text)
    except ValueError:
        value = text
    try:
        return check(_OWNER, _NAME, value)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(_reworded(error)) from None


# ----------------------------------------------------------------------------------------------
# Numbers
# ----------------------------------------------------------------------------------------------

def positive_int(text: str) -> int:
    """An integer of at least 1 (epochs, a batch size)."""
    return _number(text, int, checks.positive_int)


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (a seed)."""
    return _number(text, int, checks.non_negative_int)


def finite_positive_float(text: str) -> float:
    """A finite number above 0 (a learning rate); nan and inf are refused."""
    return _number(text, float, checks.positive_real)


def at_least(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""
    def integer_at_least(text: str) -> int:
        value = _number(text, int, checks.integer)
        if value < minimum:
            reject(f"an integer of at least {minimum}", value)
        return value
    return integer_at_least


# ----------------------------------------------------------------------------------------------
# Output paths: checked before any work, so a finished run is never lost to a bad --out
# ----------------------------------------------------------------------------------------------

def _existing_ancestor(path: Path) -> Path:
    """The nearest of ``path``'s ancestors (or itself) that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _directory_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a directory to write in, or None if it can."""
    existing = _existing_ancestor(path)
    if not existing.is_dir():
        return f"{str(existing)!r} is a file"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{str(existing)!r} is not writable"
    return None


def _file_problem(path: Path) -> str | None:
    """What ``path`` must be if it cannot be written as a file, or None if it can."""
    if path.is_dir():
        return "a file, not a directory"
    if path.exists() and not os.access(path, os.W_OK):
        return "a file you can write"
    problem = _directory_problem(path.parent)
    return None if problem is None else f"a file in a directory you can write in ({problem})"


def writable_dir(text: str) -> Path:
    """A directory that exists and is writable, or that can be created (nothing is created
    yet: the command does that when it starts)."""
    problem = _directory_problem(Path(text))
    if problem:
        reject(f"a directory you can write in ({problem})", text)
    return Path(text)


def writable_file(text: str) -> Path:
    """A file that can be written: not a directory, in a directory that is or can be made."""
    problem = _file_problem(Path(text))
    if problem:
        reject(problem, text)
    return Path(text)


def check_writable_dir(path, option: str) -> Path:
    """``writable_dir`` for a path a command derives (``out/experiments``): a UsageError
    naming ``option`` instead of an argparse error."""
    try:
        return writable_dir(str(path))
    except argparse.ArgumentTypeError as error:
        raise UsageError(option, str(error)) from None


def check_writable_file(path, option: str) -> Path:
    """``writable_file`` for a path a command derives (``out/report.html``)."""
    try:
        return writable_file(str(path))
    except argparse.ArgumentTypeError as error:
        raise UsageError(option, str(error)) from None


def make_dir(path, option: str) -> Path:
    """Create the checked output directory when the command starts and try writing in it, so
    a place the checks could not see through (a read-only mount, /proc, where even root's
    access() says yes) is still a usage error, raised before any work."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as error:
        raise usage_error(option, f"a directory you can write in (writing there failed: "
                                  f"{error.strerror})", str(path)) from None
    return path


def make_parent_dir(path, option: str) -> Path:
    """``make_dir`` for the directory an output file goes into; returns the file's path."""
    make_dir(Path(path).parent, option)
    return Path(path)
