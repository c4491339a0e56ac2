"""`python -m dashboards [--check] [--out DIR]`: regenerate the dashboards' JSON (and the
Kubernetes files made from them and the rules), or check that the committed ones are current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards import kubernetes
from dashboards.generate import OUT_DIR, Diff, compare, generate, write


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
    outputs = [
        ("dashboards", files, args.out, "sentimon-*.json"),
        ("Kubernetes files", kubernetes.generate(files), kubernetes.OUT_DIR, kubernetes.GLOB),
    ]
    if args.check:
        stale = False
        for what, generated, out, glob in outputs:
            diff = compare(generated, out, glob)
            _report(diff, out)
            stale = stale or bool(diff)
            if not diff:
                sys.stdout.write(f"{len(generated)} {what} up to date in {out}\n")
        if stale:
            sys.stderr.write("generated files are out of date: run `python -m dashboards`\n")
            return 1
        return 0
    for what, generated, out, glob in outputs:
        diff = write(generated, out, glob)
        changed = len(diff.stale) + len(diff.missing)
        sys.stdout.write(
            f"{len(generated)} {what} in {out}: {changed} written, {len(diff.extra)} removed\n"
        )
    return 0


def _report(diff: Diff, out: Path) -> None:
    for label, names in (("stale", diff.stale), ("missing", diff.missing), ("extra", diff.extra)):
        for name in names:
            sys.stderr.write(f"{label}: {out / name}\n")


if __name__ == "__main__":
    sys.exit(main())
