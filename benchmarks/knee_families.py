"""Table 1 analogue: fit the four curve families to noisy simulated validation curves.

    python -m benchmarks.knee_families [--curves 162] [--epochs 50] [--seed 0]

Curves come from the simulated trainer's remaining-error model with parameters drawn per
curve (training from scratch and fine-tuning shapes, several noise levels), so the
generating function is not one of the fitted families. Prints a Markdown table of mean
RMSE and R^2 per family, the knee error against the noise-free curve, and fit time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from opplan.planning import FAMILIES, fit_curve


def make_curves(n: int, epochs: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    t = np.arange(epochs + 1, dtype=float)
    curves = []
    for k in range(n):
        y0 = 0.0 if k % 2 == 0 else rng.uniform(0.3, 0.7)  # scratch / fine-tune
        gain, rate = rng.uniform(0.2, 0.7), rng.uniform(0.03, 0.6)
        overfit = 10 ** rng.uniform(-5, -3)
        # a sigmoid-ish warm-up for scratch curves: not in any Table 1 family
        warm = 1 / (1 + np.exp(-(t - rng.uniform(0, 5)))) if y0 == 0 else 1.0
        clean = y0 + (1 - y0) * (gain * (1 - np.exp(-rate * t)) * warm - overfit * t**2)
        noisy = clean + rng.normal(0, rng.choice([0.002, 0.005, 0.01]), t.size)
        noisy[0] = y0
        curves.append((clean, noisy))
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--curves", type=int, default=162)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    curves = make_curves(args.curves, args.epochs, args.seed)
    print(f"{args.curves} curves x {args.epochs + 1} points, seed {args.seed}\n")
    print("| family | mean RMSE | mean R² | median knee error (epochs) | failed | ms/fit |")
    print("|---|---|---|---|---|---|")
    for name in FAMILIES:
        rmse, r2, knee_err, failed, seconds = [], [], [], 0, 0.0
        for clean, noisy in curves:
            tick = time.perf_counter()
            fit = fit_curve(noisy, name)
            seconds += time.perf_counter() - tick
            if not fit.success:
                failed += 1
                continue
            rmse.append(fit.rmse)
            r2.append(fit.r2)
            knee_err.append(abs(fit.knee_epoch - int(np.argmax(clean))))
        print(
            f"| {name} | {np.mean(rmse):.3e} | {np.mean(r2):.3f} | {np.median(knee_err):.1f} "
            f"| {failed} | {1000 * seconds / len(curves):.1f} |"
        )


if __name__ == "__main__":
    main()
