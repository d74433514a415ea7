"""``minigrad experiment NAME|all [--quick] [-o DIR]``: run the seed's claims as experiments and
print each one's table and verdict (see ``minigrad.app.experiments``)."""
from __future__ import annotations

import time
from pathlib import Path

from . import arguments, experiments


def add_arguments(parser) -> None:
    names = ", ".join(experiments.EXPERIMENTS)
    parser.add_argument("name", metavar="NAME", choices=[*experiments.EXPERIMENTS, "all"],
                        help=f"one of: {names}; or 'all'")
    parser.add_argument("--quick", action="store_true",
                        help="a small version of each (all six in about a minute)")
    parser.add_argument("-o", "--out", type=arguments.writable_dir, default="out/experiments",
                        help="directory for the plots (PNG, SVG), JSON and CSV "
                             "(default: out/experiments)")
    parser.add_argument("--seed", type=arguments.non_negative_int, default=0,
                        help="seed of every run (default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def check_outputs(out, names, option: str = "-o/--out") -> Path:
    """Before any experiment runs: each file the experiments ``names`` will write in ``out``
    can be written; then ``out`` is created. A UsageError naming ``option`` otherwise."""
    out = arguments.check_writable_dir(out, option)
    for name in names:
        for extension in ("png", "svg", "json", "csv"):
            arguments.check_writable_file(out / f"{name}.{extension}", option)
    return arguments.make_dir(out, option)


def run(args) -> int:
    names = list(experiments.EXPERIMENTS) if args.name == "all" else [args.name]
    check_outputs(args.out, names)
    started = time.perf_counter()
    for name in names:
        experiment = experiments.EXPERIMENTS[name]
        print(f"== {name} (claim {experiment.number}): {experiment.claim}", flush=True)
        result = experiments.run(name, args.out, quick=args.quick, seed=args.seed,
                                 progress=not args.no_progress)
        print(result.table())
        print(result.verdict)
        print(f"[{result.seconds:.1f} s] " + "  ".join(str(p) for p in result.paths.values()))
        print(flush=True)
    if len(names) > 1:
        print(f"{len(names)} experiments in {time.perf_counter() - started:.1f} s; "
              f"results in {args.out}")
    return 0
