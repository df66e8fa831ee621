"""The ``opplan`` command line: ``opplan <command> ...``.

Each command lives in its own module ``opplan.cli._<name>`` that exposes
``register(subparsers)``; heavy imports (torch, av) happen inside the command function,
so ``opplan plan`` on the simulated trainer never imports torch.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
import threading

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
    "opplan.cli._fuse",
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (DataLoader workers, which
    inherit the handler, swallow a KeyboardInterrupt quietly)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


# OS errors that are the user's to fix (a path, a permission), not a bug: one line, exit 2
_USER_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST}
)


def _unwrapped(err: BaseException) -> str:
    """The message of ``err``; an error re-raised from a DataLoader worker carries the
    worker's whole traceback ("Caught X in DataLoader worker process 0. Original
    Traceback ..."): keep the original message only."""
    text = str(err)
    if "in DataLoader worker process" not in text or "Original Traceback" not in text:
        return text
    for name in (f"{type(err).__module__}.{type(err).__qualname__}", type(err).__name__):
        head = f"\n{name}: "
        if head in text:
            return text.rsplit(head, 1)[1].strip()
    return text.strip().splitlines()[-1]


def _interrupted(args: argparse.Namespace, err: KeyboardInterrupt) -> str:
    """What a Ctrl-C or SIGTERM leaves behind, and how to go on."""
    what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
    out = getattr(args, "out", None)
    if hasattr(args, "resume") and out is not None:
        return (
            f"{what}: every finished epoch is kept in {out}; continue with "
            f"`opplan {args.command} ... --out {out} --resume`"
        )
    return f"{what}; nothing to resume: run `opplan {args.command}` again"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"opplan: error: {_unwrapped(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OpplanError as err:
        print(f"opplan: error: {_unwrapped(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"opplan: {_interrupted(args, err)}", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    except OSError as err:
        if err.errno not in _USER_ERRNOS or err.filename is None:
            raise
        print(f"opplan: error: {err.filename}: {err.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
