"""Stopping rules replayed on real validation curves recorded in plan journals.

    python -m benchmarks.stopping_replay JOURNAL... [--rules paper:4,paper:10,noise:1:2]

A plan's journal records every move's validation curve (``transition_started``'s ``y0``,
then ``epoch_scored``) up to where its own rule stopped the move. Each rule below is run on
each recorded curve as the planner would run it (``PlannerOptions.stopper``, the journal's
own options with the rule's knobs swapped in), without training anything. Per rule: the
epochs it would train (a move it would not have stopped within the recording counts the
recorded epochs and is *censored*: the recording is too short to say more) and its
*regret*, the best recorded score of the move minus the recorded score at the epoch it keeps,
in validation videos. Replay the journals of the longest-running rule (the paper's with
T = 10) so that the fewest moves are censored. This ranks stopping rules per move only; a
different stop changes the models downstream, which only a new plan measures.

Rules: ``paper:T`` (§3.3, stop at t >= t* + T), ``noise:Z:P`` (``planner.rule: noise``
with ``noise_z`` Z and ``noise_patience`` P), ``ucb:Z:P`` (the noise rule with the remaining
gain's upper confidence bound -- the fitted gain at every later epoch plus Z delta-method
standard errors of the fit, over the parameters not at a bound -- below Z noise stds;
issue 17's "compare the gain with the fit's own uncertainty", tried here, not in the
library: see docs/results.md).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np

from opplan.planning.curves import FAMILIES
from opplan.planning.knee import KneeFit, KneeStopper
from opplan.planning.noise_rule import NoiseAwareStopper
from opplan.planning.options import PlannerOptions
from opplan.planning.state import TrainingState

DEFAULT_RULES = "paper:4,paper:5,paper:10,noise:1:2,noise:1:4,noise:0.5:2,ucb:1:2"


@dataclass
class UcbStopper(NoiseAwareStopper):
    """The noise rule, quiet only when the remaining gain's upper confidence bound is below
    ``z`` noise stds (the library's rule compares the fitted gain itself)."""

    def _decide(self, fit: KneeFit) -> tuple[tuple[int, float], bool]:
        decision, _ = super()._decide(fit)  # the library's test, and its quiet count
        if self.quiet and self._gain_bound(fit, decision[0]) >= self.z * self.sigma():
            self.quiet = 0
        return decision, self.quiet >= self.patience

    def _gain_bound(self, fit: KneeFit, kept: int) -> float:
        fam, p, t = FAMILIES[fit.family], np.asarray(fit.params), self.epoch
        if t >= self.max_epochs:
            return 0.0
        lo, hi = fam.lower(), fam.upper()
        free = ~(np.isclose(p, lo, rtol=1e-6, atol=1e-9) | np.isclose(p, hi, rtol=1e-6, atol=1e-9))
        jac = fam.jacobian(p, np.arange(t + 1, dtype=float))[:, free]
        cov = max(self.sigma() ** 2, fit.rmse**2) * np.linalg.pinv(jac.T @ jac)
        later = np.arange(t + 1, self.max_epochs + 1, dtype=float)
        grad = (fam.jacobian(p, later) - fam.jacobian(p, np.array([float(kept)])))[:, free]
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, cov, grad), 0.0))
        gain = fit.predict(later) - float(fit.predict([float(kept)])[0])
        return float(np.max(gain + self.z * se))


def _options(journal: list[dict[str, Any]]) -> PlannerOptions:
    names = {f.name for f in fields(PlannerOptions)}
    recorded = journal[0]["options"]
    return PlannerOptions(**{k: v for k, v in recorded.items() if k in names})


def stopper(options: PlannerOptions, rule: str, from_initial: bool, y0: float) -> KneeStopper:
    kind, *knobs = rule.split(":")
    src = cast(TrainingState, SimpleNamespace(is_initial=from_initial))
    if kind == "paper":
        return replace(options, rule="paper", delay=int(knobs[0])).stopper(src, y0)
    z, patience = float(knobs[0]), int(knobs[1])
    noisy = replace(options, rule="noise", noise_z=z, noise_patience=patience)
    made = noisy.stopper(src, y0)
    if kind == "noise":
        return made
    if kind == "ucb":
        assert isinstance(made, NoiseAwareStopper)
        keep = ("noise", "eval_count", "z", "patience", "window")
        return UcbStopper(
            made.y0,
            made.delay,
            made.max_epochs,
            made.family,
            made.min_epochs,
            made.min_rise,
            **{k: getattr(made, k) for k in keep},
        )
    raise SystemExit(f"unknown rule {rule!r}: paper:T, noise:Z:P or ucb:Z:P")


def curves(journal: list[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """Every move's recorded curve, ``y0`` first, in the order the moves started."""
    out: dict[tuple[str, str], list[float]] = {}
    for entry in journal:
        key = (entry.get("src", ""), entry.get("dst", ""))
        if entry["op"] == "transition_started":
            out[key] = [float(entry["y0"])]
        elif entry["op"] == "epoch_scored" and key in out:
            out[key].append(float(entry["score"]))
    return out


def replay(journal: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    """One row per recorded move: where ``rule`` stops it and what it keeps."""
    options, rows = _options(journal), []
    videos = options.eval_count or 1
    for (src, dst), curve in curves(journal).items():
        made = stopper(options, rule, src == "initial", curve[0])
        stop = next((t for t, y in enumerate(curve[1:], 1) if made.observe(y)), None)
        kept = made.knee_epoch if stop is not None else None
        best = max(curve)
        rows.append(
            {
                "src": src,
                "dst": dst,
                "recorded": len(curve) - 1,
                "epochs": stop if stop is not None else len(curve) - 1,
                "censored": stop is None,
                "regret": None if kept is None else (best - curve[kept]) * videos,
            }
        )
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    judged = [r["regret"] for r in rows if r["regret"] is not None]
    return {
        "moves": len(rows),
        "epochs": sum(r["epochs"] for r in rows),
        "censored": sum(r["censored"] for r in rows),
        "regret_mean": float(np.mean(judged)) if judged else math.nan,
        "regret_max": max(judged, default=math.nan),
        "over_2": sum(x > 2 for x in judged),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journals", nargs="+", type=Path)
    parser.add_argument("--rules", default=DEFAULT_RULES)
    args = parser.parse_args(argv)
    journals = [[json.loads(line) for line in p.read_text().splitlines()] for p in args.journals]
    print("| rule | epochs | / recorded | censored | regret mean | regret max | > 2 videos |")
    print("|---|---|---|---|---|---|---|")
    recorded = sum(len(c) - 1 for j in journals for c in curves(j).values())
    for rule in args.rules.split(","):
        rows = [row for j in journals for row in replay(j, rule)]
        s = summary(rows)
        print(
            f"| {rule} | {s['epochs']} | {s['epochs'] / recorded:.2f} | {s['censored']}/"
            f"{s['moves']} | {s['regret_mean']:.2f} | {s['regret_max']:.1f} | {s['over_2']} |"
        )


if __name__ == "__main__":
    main()
