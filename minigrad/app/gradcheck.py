"""``minigrad gradcheck``: the library's self-test (``minigrad.gradcheck.suite``) as one table,
with the report of every failure under it; the exit code is non-zero if anything fails."""
from __future__ import annotations

import time

from ..gradcheck.suite import Row, check_all, format_error

__all__ = ["add_arguments", "run", "format_table", "format_failures"]


def add_arguments(parser) -> None:
    parser.add_argument("-k", metavar="TEXT", dest="pattern",
                        help="only the entries whose name contains TEXT (e.g. -k batchnorm)")
    parser.add_argument("--fast", action="store_true",
                        help="fast mode: one random directional derivative per input")


def run(args) -> int:
    start = time.perf_counter()
    rows = check_all(args.pattern, fast_mode=args.fast)
    mode = "fast" if args.fast else "full"
    print(f"minigrad gradcheck: every op, function and layer against central finite differences "
          f"({mode} mode; eps=1e-06, atol=1e-05, rtol=0.001)\n")
    print(format_table(rows))
    failures = format_failures(rows)
    if failures:
        print("\n" + failures)
    failed = sum(not row.ok for row in rows)
    entries = len({row.name.split(" (")[0] for row in rows})
    print(f"\n{len(rows)} checks of {entries} ops, functions and layers: {len(rows) - failed} "
          f"passed, {failed} failed ({time.perf_counter() - start:.1f} s)")
    if not rows:
        print(f"nothing matches -k {args.pattern!r}")
        return 1
    return 1 if failed else 0


def format_table(rows: list[Row]) -> str:
    header = (f"{'kind':<9}{'name':<40}{'shapes':<34}{'max rel err':>11}{'2nd order':>11}"
              f"  result")
    lines = [header, "-" * len(header)]
    for row in rows:
        verdict = "pass" if row.ok else ("ERROR" if row.problem else "FAIL")
        lines.append(f"{row.kind:<9}{row.name:<40}{row.shapes:<34}{format_error(row.first):>11}"
                     f"{format_error(row.second):>11}  {verdict}")
    return "\n".join(lines)


def format_failures(rows: list[Row]) -> str:
    blocks = []
    for row in rows:
        if row.ok:
            continue
        body = row.problem or "\n".join(
            str(r) for r in (row.first, row.second) if r is not None and (not r.ok or r.warnings))
        blocks.append(f"== {row.name}\n{body}")
    return "\n\n".join(blocks)
