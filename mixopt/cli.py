"""The ``mixopt`` command.

``mixopt demo``  fit the bundled ladder, print the fit and compute-optimal plans, draw a figure.
``mixopt plan``  plan a budget from saved fits (``mixopt plan FIT.json --budget 1e21``).

Each subcommand lives next to the code it drives and parses its own arguments.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from mixopt.errors import MixoptError

_COMMANDS = {
    "demo": ("mixopt.demo", "fit the bundled ladder and plan a few budgets"),
    "plan": ("mixopt.plan.command", "plan a compute budget from saved fits"),
    "mixture": ("mixopt.mixture.command", "design proxy swarms and optimise a data mixture"),
}


def _usage() -> str:
    lines = ["usage: mixopt <command> [options]", "", "commands:"]
    lines += [f"  {name:<6} {help_}" for name, (_, help_) in _COMMANDS.items()]
    lines += ["", "Run 'mixopt <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from mixopt import __version__

        print(f"mixopt {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in _COMMANDS:
        print(f"mixopt: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(_COMMANDS[command][0])
    try:
        return int(module.main(rest) or 0)
    except MixoptError as exc:
        print(f"mixopt {command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
