"""The ``minigrad`` command. Each subcommand lives in its own module, which provides
``add_arguments(parser)`` and ``run(args) -> exit code``; this file only wires them up.

A bad command line ends the same way whichever check finds it (an argparse ``type=`` from
``minigrad.app.arguments``, or a ``UsageError`` from a command's ``run`` before any work):
the usage, one line ``minigrad <command>: error: ...`` on stderr, and exit status 2."""
from __future__ import annotations

import argparse
import importlib
import sys

from ..training import LossNotFiniteError
from .arguments import CommandLineExit, UsageError

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS = {
    "demo": ("minigrad.app.demo",
             "train a BatchNorm network, check its gradients, draw it, report"),
    "experiment": ("minigrad.app.experiment", "run the seed's BatchNorm claims as experiments"),
    "exercise": ("minigrad.app.exercise",
                 "write BatchNorm's backward by hand: a stub, then a diagnosing check"),
    "gradcheck": ("minigrad.app.gradcheck", "check every op and layer by finite differences"),
    "graph": ("minigrad.app.graph", "draw a computation graph and its gradients (Graphviz)"),
    "train": ("minigrad.app.train", "train a BatchNorm MLP or CNN on digits, save and reload it"),
}


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors raise ``CommandLineExit`` (status 2, as argparse's)
    carrying the error line, so ``main`` called in-process tells why it stopped."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        line = f"{self.prog}: error: {message}"
        print(line, file=sys.stderr)
        raise CommandLineExit(line)


def build_parser(argv: list) -> argparse.ArgumentParser:
    """The parser for ``argv``: every command is listed, and the one ``argv`` names (its first
    word) gets its module's arguments."""
    parser = Parser(
        prog="minigrad", description="minigrad: tensors, autodiff and BatchNorm you can inspect.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((word for word in argv if not word.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run, command_parser=sub)
    return parser


def main(argv=None) -> int:
    """Run the command ``argv`` names (default: ``sys.argv[1:]``); returns its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the command's parser, whose usage is the one that helps
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.run(args) or 0)
    except UsageError as error:
        args.command_parser.error(str(error))
    except LossNotFiniteError as error:
        # Not a bad command line (the settings were valid) but a run that diverged: say where.
        print(f"{args.command_parser.prog}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
