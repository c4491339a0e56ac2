"""`python -m dashboards [--check] [--out DIR]`: regenerate the dashboards' JSON, or check it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards.generate import OUT_DIR, compare, generate, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a committed dashboard is stale, missing or extra",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder (default: %(default)s)")
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        diff = compare(files, args.out)
        for label, names in (
            ("stale", diff.stale),
            ("missing", diff.missing),
            ("extra", diff.extra),
        ):
            for name in names:
                sys.stderr.write(f"{label}: {args.out / name}\n")
        if diff:
            sys.stderr.write("dashboards are out of date: run `python -m dashboards`\n")
            return 1
        sys.stdout.write(f"{len(files)} dashboards up to date in {args.out}\n")
        return 0
    diff = write(files, args.out)
    changed = len(diff.stale) + len(diff.missing)
    sys.stdout.write(
        f"{len(files)} dashboards in {args.out}: {changed} written, {len(diff.extra)} removed\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
