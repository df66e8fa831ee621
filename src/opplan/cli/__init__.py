"""The ``opplan`` command line: ``opplan <command> ...``.

Each command lives in its own module ``opplan.cli._<name>`` that exposes
``register(subparsers)``; heavy imports (torch, av) happen inside the command function,
so ``opplan plan`` on the simulated trainer never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Before torch loads: idle OpenMP threads sleep instead of spinning. On a shared or small
# CPU the default (spin) made 2 threads 4-6x slower than 1 (docs/benchmarks.md, Models).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from opplan import __version__
from opplan.errors import ConfigError, OpplanError

__all__ = ["main"]

_COMMAND_MODULES = (
    "opplan.cli._plan",
    "opplan.cli._train",
    "opplan.cli._data",
    "opplan.cli._models",
    "opplan.cli._baseline",
)

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opplan", description="Optimization planning for 3D ConvNets."
    )
    parser.add_argument("--version", action="version", version=f"opplan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"opplan: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OpplanError as err:
        print(f"opplan: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("opplan: interrupted (resume with --resume)", file=sys.stderr)
        return 130
