"""``python -m mixopt.datasets PATH``: regenerate the simulated demo ladder into ``PATH``.

A path is required: the bundled ``demo_ladder.csv`` inside the installed package is never
overwritten implicitly. Maintainers regenerating the bundled copy pass ``--bundled``.
"""

from __future__ import annotations

import argparse
import sys

from mixopt.datasets import write_demo_ladder


def main(argv: list[str] | None = None) -> int:
    """Write the demo ladder to the given path (or the bundled file with ``--bundled``)."""
    parser = argparse.ArgumentParser(
        prog="python -m mixopt.datasets",
        description="Regenerate the simulated demo ladder (make_demo_ladder, bit for bit).")
    parser.add_argument("path", nargs="?", help="where to write the CSV")
    parser.add_argument("--bundled", action="store_true",
                        help="overwrite the demo_ladder.csv bundled in the package (maintainers)")
    args = parser.parse_args(argv)
    if args.bundled == (args.path is not None):
        parser.print_usage(sys.stderr)
        print("python -m mixopt.datasets: give a PATH to write to, or --bundled to regenerate "
              "the package's own demo_ladder.csv (not both)", file=sys.stderr)
        return 2
    print("wrote", write_demo_ladder(None if args.bundled else args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
