"""How often the noise rule stops a single move too early, on random curves.

    python -m benchmarks.noise_rule_curves [--curves 1500] [--seed 2]

The curves are tests/planning/test_noise_rule.py's family (exponential rise, quadratic
over-fitting, 80 epochs, Gaussian noise of std 0.005/0.01/0.03), drawn from numpy's
generator at ``--seed``. A stop is *premature* when the kept epoch's noise-free value is
more than 4 noise stds + 0.01 below the best of the whole budget (the property test's bound).
Prints the premature-stop rate and the mean stopping epoch.
"""

from __future__ import annotations

import argparse

import numpy as np

from opplan.planning.noise_rule import NoiseAwareStopper

EPOCHS = 80


def curve(y0: float, gain: float, rate: float, overfit: float, t: np.ndarray) -> np.ndarray:
    return y0 + (1 - y0) * (gain * (1 - np.exp(-rate * t)) - overfit * t**2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    t = np.arange(1, EPOCHS + 1)
    premature, stops = 0, []
    for _ in range(args.curves):
        y0, gain, rate = rng.uniform(0, 0.6), rng.uniform(0.05, 0.7), rng.uniform(0.1, 0.9)
        overfit, sigma = 10 ** rng.uniform(-5, -3), float(rng.choice([0.005, 0.01, 0.03]))
        clean = curve(y0, gain, rate, overfit, t)
        stopper = NoiseAwareStopper(y0, max_epochs=EPOCHS, noise=sigma)
        for y in clean + rng.normal(0, sigma, EPOCHS):
            if stopper.observe(float(y)):
                break
        truth = np.concatenate([[y0], clean])
        if truth.max() - truth[stopper.knee_epoch] > 4 * sigma + 0.01:
            premature += 1
            print(f"premature: y0={y0:.3f} gain={gain:.3f} rate={rate:.3f} sigma={sigma} "
                  f"stop={stopper.stopped_at} knee={stopper.knee_epoch}")  # fmt: skip
        stops.append(stopper.stopped_at)
    print(f"{args.curves} curves (seed {args.seed}): premature stops {premature} "
          f"({premature / args.curves:.2%}), mean stop at epoch {np.mean(stops):.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
