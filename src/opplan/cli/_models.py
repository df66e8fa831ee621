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
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="B",
        help="also measure the peak memory of one training step of B clips (needs --device "
        "cuda; on CPU it is not measured)",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="of the memory step (default auto: bf16 where supported)",
    )
    parser.add_argument("--channels-last", action="store_true", help="NDHWC memory step")
    parser.set_defaults(func=_run)


def _memory_cells(args: argparse.Namespace, name: str, thw: tuple[int, int, int]) -> list[str]:
    """Peak GiB of one training step of ``--batch`` clips and MiB per clip (the peak less
    what stays allocated after the step -- weights, gradients, momentum -- over B)."""
    import torch

    from opplan.engine.performance import resolve_precision, training_memory
    from opplan.models import build_model

    device = torch.device(args.device)
    precision = resolve_precision(args.precision, device)
    torch.manual_seed(0)
    model = build_model(name, args.num_classes)
    try:
        peak, held = training_memory(
            model,
            batch=args.batch,
            thw=thw,
            device=device,
            precision=precision,
            channels_last=args.channels_last,
        )
    except RuntimeError as err:  # input smaller than the receptive field
        return ["n/a", str(err).splitlines()[0][:40]]
    finally:
        del model
        torch.cuda.empty_cache()
    if peak is None:
        return ["out of memory", "-"]
    return [f"{peak / 2**30:.2f}", f"{(peak - held) / args.batch / 2**20:.0f}"]


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from opplan.models import list_models, model_costs

    thw = parse_input_size(args.input)
    measure = args.batch is not None and args.device == "cuda"
    if args.batch is not None and args.batch < 1:
        raise ConfigError(f"--batch: must be at least 1, got {args.batch}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device: cuda requested but no GPU is available")
    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"--pattern {args.pattern!r} matches no registered model")
    rows = model_costs(names, thw, num_classes=args.num_classes)
    caption = "GFLOPs: 2 FLOPs per multiply-add (GMACs = GFLOPs / 2), conv + matmul only"
    table = Table(
        title=f"Registered networks, one {thw[0]}×{thw[1]}×{thw[2]} view, "
        f"{args.num_classes} classes",
        caption=caption,
    )
    table.add_column("model")
    table.add_column("family")
    table.add_column("params (M)", justify="right")
    table.add_column("GFLOPs / view", justify="right")
    if measure:
        table.add_column(f"peak train GiB (B={args.batch})", justify="right")
        table.add_column("train MiB / clip", justify="right")
    for row in rows:
        gflops = f"{row.gflops:.2f}" if row.gflops is not None else f"n/a ({row.error})"
        memory = _memory_cells(args, row.name, thw) if measure and row.flops else []
        memory = memory or (["-", "-"] if measure else [])
        table.add_row(row.name, row.family, f"{row.params / 1e6:.2f}", gflops, *memory)
    Console().print(table)
    if args.batch is not None and not measure:
        print("training memory: not measured on CPU (use --device cuda)")
    return 0
