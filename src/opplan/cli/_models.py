"""``opplan models``: parameters and GFLOPs per view of every registered network (Table 8)."""

from __future__ import annotations

import argparse
import re

from opplan.errors import ConfigError

__all__ = ["parse_input_size", "register"]

_SIZE = re.compile(r"(\d+)x(\d+)(?:x(\d+))?")


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"16x224x224"`` -> (16, 224, 224); ``"16x112"`` means a square 16×112×112 view."""
    m = _SIZE.fullmatch(text.strip().lower())
    if m is None:
        raise ConfigError(f"--input: expected TxHxW or TxS (e.g. 16x224x224), got {text!r}")
    t, h = int(m[1]), int(m[2])
    w = int(m[3]) if m[3] else h
    if min(t, h, w) < 1:
        raise ConfigError(f"--input: sizes must be positive, got {text!r}")
    return t, h, w


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the registered networks with parameters and GFLOPs per view",
        description=(
            "List every registered network with its parameters and GFLOPs for one view "
            "(paper Table 8). FLOPs are counted by torch.utils.flop_counter on the meta "
            "device: 2 FLOPs per multiply-add, convolutions and matmuls only."
        ),
    )
    parser.add_argument(
        "--input",
        default="16x224x224",
        metavar="TxHxW",
        help="size of one view (default: 16x224x224, the paper's planning view)",
    )
    parser.add_argument(
        "--pattern", default=None, metavar="GLOB", help="only names matching, e.g. 'dg_*'"
    )
    parser.add_argument(
        "--num-classes", type=int, default=400, help="classifier size (default: 400)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from opplan.models import list_models, model_costs

    thw = parse_input_size(args.input)
    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"--pattern {args.pattern!r} matches no registered model")
    rows = model_costs(names, thw, num_classes=args.num_classes)
    table = Table(
        title=f"Registered networks, one {thw[0]}×{thw[1]}×{thw[2]} view, "
        f"{args.num_classes} classes",
        caption="GFLOPs: 2 FLOPs per multiply-add (GMACs = GFLOPs / 2), conv + matmul only",
    )
    table.add_column("model")
    table.add_column("family")
    table.add_column("params (M)", justify="right")
    table.add_column("GFLOPs / view", justify="right")
    for row in rows:
        gflops = f"{row.gflops:.2f}" if row.gflops is not None else f"n/a ({row.error})"
        table.add_row(row.name, row.family, f"{row.params / 1e6:.2f}", gflops)
    Console().print(table)
    return 0
