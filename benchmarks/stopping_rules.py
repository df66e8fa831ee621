"""The paper's knee rule (T = 10) against the noise rule (beyond the paper, issue 17).

    python -m benchmarks.stopping_rules [--instances 10] [--noise 0.01] [--dip 0.0] [--delay 10]
        [--race] [--defer]

Random planning instances (RandomLandscape seeds 0..n-1, noise std ``--noise``) on the
3x3x2 extended graph, planned once per rule. ``true value``: the noise-free score of the
chosen path (each step replayed without noise from the previous step's noise-free score, at
the planned epochs), so the two rules are compared on what their paths are worth, not on
their own noisy estimates. ``same within noise``: |noise rule - paper| <= the noise std.
``--dip D`` makes every fine-tuning move lose D of its starting score in its first epoch
and recover over the next few (the shape of issue 17's clip-length moves).

``--race`` adds the variants paper+race and noise+race (``planner.race``, issue 17 item 3),
``--defer`` (with ``--race``) noise+race+defer: one table of epochs ratio vs the paper rule,
same-within-noise count and switches (pauses followed by a trainer resume) per variant.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from opplan.planning import Journal, Plan, Planner, PlannerOptions, TrainingState, TransitionGraph
from opplan.planning.simulate import (
    CurveParams,
    RandomLandscape,
    SimulatedTrainer,
    simulated_score,
)

GRAPH = TransitionGraph.build(
    "extended", ["consecutive", "uniform"], [16, 32, 64], [0.04, 0.004, 0.0004]
)


@dataclass(frozen=True)
class DipLandscape:
    """A RandomLandscape whose fine-tuning moves dip by ``dip`` in epoch 1 and recover
    (rate 0.7 per epoch), on top of their usual curve."""

    base: RandomLandscape
    dip: float

    @property
    def seed(self) -> int:
        return self.base.seed

    @property
    def noise(self) -> float:
        return self.base.noise

    def curve(self, src: TrainingState, dst: TrainingState) -> CurveParams:
        return self.base.curve(src, dst)


class DipTrainer(SimulatedTrainer):
    def evaluate(self) -> float:
        score = super().evaluate()
        land = self.landscape
        if isinstance(land, DipLandscape) and not self._src.is_initial and self._epoch > 0:
            score -= land.dip * self._y0 * math.exp(-0.7 * (self._epoch - 1))
        return score


def true_value(plan: Plan, landscape: RandomLandscape, dip: float) -> float:
    clean = RandomLandscape(landscape.seed, 0.0)
    y, src = 0.0, TrainingState.initial()
    for step in plan.path:
        y0 = y
        y = simulated_score(clean, src, step.state, y0, step.epochs)
        if dip and not src.is_initial and step.epochs > 0:
            y -= dip * y0 * math.exp(-0.7 * (step.epochs - 1))
        src = step.state
    return y


def plan_once(seed: int, noise: float, dip: float, options: PlannerOptions) -> Plan:
    return plan_counted(seed, noise, dip, options)[0]


def plan_counted(seed: int, noise: float, dip: float, options: PlannerOptions) -> tuple[Plan, int]:
    """The plan and its switches (racing's pauses that cost a trainer resume)."""
    base = RandomLandscape(seed, noise)
    landscape = DipLandscape(base, dip) if dip else base
    with tempfile.TemporaryDirectory() as tmp:
        trainer = DipTrainer(Path(tmp) / "ck", landscape)
        with Journal(Path(tmp) / "j.jsonl") as journal:
            planner = Planner(GRAPH, trainer, journal, options)
            plan = planner.run()
    return plan, planner.switches


def compare(args: argparse.Namespace, paper: PlannerOptions, noisy: PlannerOptions) -> None:
    """One row per instance, each variant's epochs ratio vs the paper rule and its value."""
    variants = {"noise": noisy, "paper+race": replace(paper, race=True)}
    variants["noise+race"] = replace(noisy, race=True)
    if args.defer:
        variants["noise+race+defer"] = replace(noisy, race=True, defer=True)
    header = " | ".join(f"{name}: epochs (ratio), true value" for name in variants)
    print(f"| instance | paper: epochs, true value | {header} |")
    print("|---" * (len(variants) + 2) + "|")
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    same = dict.fromkeys(variants, 0)
    switches = dict.fromkeys(variants, 0)
    for seed in range(args.instances):
        land = RandomLandscape(seed, args.noise)
        a = plan_once(seed, args.noise, args.dip, paper)
        va = true_value(a, land, args.dip)
        cells = []
        for name, options in variants.items():
            b, n = plan_counted(seed, args.noise, args.dip, options)
            vb = true_value(b, land, args.dip)
            ok = abs(vb - va) <= args.noise
            same[name] += ok
            switches[name] += n
            ratios[name].append(b.epochs_total / a.epochs_total)
            cells.append(
                f"{b.epochs_total} ({ratios[name][-1]:.2f}), {vb:.4f}{'' if ok else ' NO'}"
            )
        print(f"| random seed {seed} | {a.epochs_total}, {va:.4f} | {' | '.join(cells)} |")
    print("\n| variant | mean epochs ratio vs paper | same within noise | switches |")
    print("|---|---|---|---|")
    for name in variants:
        mean = sum(ratios[name]) / len(ratios[name])
        print(f"| {name} | {mean:.2f} | {same[name]}/{args.instances} | {switches[name]} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--dip", type=float, default=0.0)
    parser.add_argument("--z", type=float, default=1.0)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--delay", type=int, default=10, help="the paper rule's T")
    parser.add_argument("--race", action="store_true", help="add the racing variants")
    parser.add_argument("--defer", action="store_true", help="with --race: add +defer")
    args = parser.parse_args()
    paper = PlannerOptions(delay=args.delay, max_epochs=100)
    noisy = PlannerOptions(
        max_epochs=100,
        rule="noise",
        noise=args.noise,
        noise_z=args.z,
        noise_patience=args.patience,
    )
    if args.race:
        compare(args, paper, noisy)
        return
    print(
        "| instance | paper: epochs | paper: true value | noise rule: epochs "
        "| noise rule: true value | epochs ratio | same within noise |"
    )
    print("|---|---|---|---|---|---|---|")
    same, ratios = 0, []
    for seed in range(args.instances):
        a = plan_once(seed, args.noise, args.dip, paper)
        b = plan_once(seed, args.noise, args.dip, noisy)
        va = true_value(a, RandomLandscape(seed, args.noise), args.dip)
        vb = true_value(b, RandomLandscape(seed, args.noise), args.dip)
        ok = abs(vb - va) <= args.noise
        same += ok
        ratios.append(b.epochs_total / a.epochs_total)
        print(
            f"| random seed {seed} | {a.epochs_total} | {va:.4f} | {b.epochs_total} | "
            f"{vb:.4f} | {ratios[-1]:.2f} | {'yes' if ok else 'NO'} |"
        )
    mean = sum(ratios) / len(ratios)
    print(
        f"\nsame final value within noise: {same}/{args.instances}; mean epochs ratio {mean:.2f}"
    )


if __name__ == "__main__":
    main()
