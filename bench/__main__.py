"""``python -m bench [SUITE ...] [--quick]``: run benchmark suites, print the table;
``python -m bench compare BEFORE AFTER [SUITE ...]``: two revisions side by side."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bench import appends, client, export, positions, proofs, readers, verify
from bench.harness import Report, console

SUITES: dict[str, Callable[[Report], None]] = {
    "proofs": proofs.run,
    "positions": positions.run,
    "export": export.run,
    "verify": verify.run,
    "appends": appends.run,
    "readers": readers.run,
    "client": client.run,
}


def main() -> None:
    if sys.argv[1:2] == ["compare"]:
        from bench import compare

        compare.main(sys.argv[2:], list(SUITES))
        return
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], help="default: all")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes (10^3, 10^4) and shorter runs: a smoke run",
    )
    args = parser.parse_args()
    report = Report()
    for name in args.suites or list(SUITES):
        if args.quick and name == "proofs":
            proofs.run(report, sizes=(1_000, 10_000))
        elif args.quick and name == "positions":
            positions.run(report, sizes=(1_000, 10_000))
        elif args.quick and name == "export":
            export.run(report, sizes=(1_000, 10_000))
        elif args.quick and name == "verify":
            verify.run(report, sizes=(10_000,))
        elif args.quick and name == "appends":
            appends.run(report, seconds=2, batch_seconds=2, es_events=5_000, rounds=1)
        elif args.quick and name == "readers":
            readers.run(report, rounds=1)
        elif args.quick and name == "client":
            client.run(report, rounds=1, batches=4, verified_batches=1)
        else:
            SUITES[name](report)
    report.print_table()
    path = report.write_json("latest")
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
