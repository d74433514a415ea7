"""The ``minigrad`` command. Each subcommand lives in its own module, which provides
``add_arguments(parser)`` and ``run(args) -> exit code``; this file only wires them up."""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS = {
    "demo": ("minigrad.app.demo",
             "train a BatchNorm network, check its gradients, draw it, report"),
    "experiment": ("minigrad.app.experiment", "run the seed's BatchNorm claims as experiments"),
    "gradcheck": ("minigrad.app.gradcheck", "check every op and layer by finite differences"),
    "graph": ("minigrad.app.graph", "draw a computation graph and its gradients (Graphviz)"),
    "train": ("minigrad.app.train", "train a BatchNorm MLP or CNN on digits, save and reload it"),
}


def build_parser(argv: list) -> argparse.ArgumentParser:
    """The parser for ``argv``: every command is listed, and the one ``argv`` names (its first
    word) gets its module's arguments."""
    parser = argparse.ArgumentParser(
        prog="minigrad", description="minigrad: tensors, autodiff and BatchNorm you can inspect.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((word for word in argv if not word.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
