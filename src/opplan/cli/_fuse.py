"""``opplan fuse A.scores.npz B.scores.npz [--weights 1,1.5] --out fused.json``: late fusion
of two streams (§5.5, Table 7: RGB + flow).

The per-video softmax scores of ``opplan evaluate`` (``OUT.scores.npz``) are averaged with
the weights (default equal); the result has the fields of ``evaluate``'s (top-1, top-5,
per-class accuracy, confusion matrix) and ``fused.scores.npz`` beside it. Both files must
score the same videos (a missing one is named, exit 2). ``--search A_VAL B_VAL`` chooses
B's weight on two other scores files of the same runs (``opplan evaluate --split val``),
which must share no video with the fused ones: the weight is never picked on the test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fuse = sub.add_parser(
        "fuse",
        help="late fusion of two runs' test scores (RGB + flow), top-1/top-5/per class",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fuse.add_argument("scores", type=Path, nargs=2, metavar="SCORES", help="OUT.scores.npz")
    fuse.add_argument("--weights", default=None, metavar="WA,WB", help="default 1,1")
    fuse.add_argument(
        "--search",
        type=Path,
        nargs=2,
        default=None,
        metavar=("A_VAL", "B_VAL"),
        help="choose B's weight (A: 1) on these scores of another split (e.g. --split val)",
    )
    fuse.add_argument("--out", type=Path, required=True, metavar="FUSED.json")
    fuse.set_defaults(func=run_fuse)


def _weights(text: str | None) -> list[float] | None:
    from opplan.errors import ConfigError

    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--weights: expected numbers like '1,1.5', got {text!r}") from None
    return values


def run_fuse(args: argparse.Namespace) -> int:
    from opplan.engine.evaluate import save_evaluation
    from opplan.engine.fusion import fuse_scores, load_score_file, search_weight
    from opplan.errors import ConfigError

    weights = _weights(args.weights)
    if weights is not None and args.search is not None:
        raise ConfigError("--weights and --search: give one (--search chooses the weights)")
    if args.out.suffix != ".json":
        raise ConfigError(f"--out: {args.out} must end in .json (fused.scores.npz goes beside)")
    files = [load_score_file(p) for p in args.scores]
    header: dict[str, object] = {"fused": [str(p) for p in args.scores]}
    if args.search is not None:
        search = [load_score_file(p) for p in args.search]
        for fused, chosen in zip(files, search, strict=True):  # one stream: one path scheme
            shared = sorted(set(fused.paths) & set(chosen.paths))
            if shared:
                raise ConfigError(
                    f"--search: {chosen.path} shares {len(shared)} videos with {fused.path} "
                    f"(e.g. {shared[0]!r}); choose the weight on another split "
                    "(opplan evaluate --split val), never on the test"
                )
        weight, top1 = search_weight(search[0], search[1])
        weights = [1.0, weight]
        header["search"] = {"files": [str(p) for p in args.search], "weight": weight,
                            "top1": top1}  # fmt: skip
        print(f"--search: weight {weight:g} for {args.scores[1]} (top-1 {top1:.4f} on "
              f"{args.search[0]})")  # fmt: skip
    result = fuse_scores(files, weights)
    header["weights"] = weights or [1.0, 1.0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_evaluation(args.out, result, header)
    excluded = f" ({result.num_excluded} excluded)" if result.num_excluded else ""
    print(f"fused {result.num_videos} videos{excluded}, weights {header['weights']}: "
          f"top-1 {result.top1:.4f}  top-5 {result.top5:.4f}  -> {args.out}")  # fmt: skip
    return 0
