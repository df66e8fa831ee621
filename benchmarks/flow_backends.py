"""TV-L1 implementations that install from the registry (issue 19): OpenCV contrib's
``DualTVL1OpticalFlow`` (opplan's, the ``flow`` extra) against scikit-image's
``optical_flow_tvl1``, on known sub-pixel translations of a smooth random texture.

    pip install scikit-image   # not an opplan dependency; only this comparison needs it
    nice -n 5 .venv/bin/python -m benchmarks.flow_backends

Prints median recovered (x, y) flow of the inner pixels and CPU ms per frame pair.
"""

import sys
import time

import numpy as np
from scipy.ndimage import gaussian_filter, shift

from opplan.video.flow import tvl1_flow

try:
    import skimage
    from skimage.registration import optical_flow_tvl1
except ImportError:
    sys.exit("benchmarks.flow_backends needs scikit-image: pip install scikit-image")

rng = np.random.default_rng(0)
rows = []
for size in (32, 64):
    base = gaussian_filter(rng.uniform(0, 255, (size + 16, size + 16)), 1.5)
    for dx, dy in ((1.0, 0.0), (0.0, -2.0), (1.5, 1.0)):
        a = base[8:-8, 8:-8]
        b = shift(base, (dy, dx), order=3, mode="reflect")[8:-8, 8:-8]
        a8, b8 = a.clip(0, 255).astype(np.uint8), b.clip(0, 255).astype(np.uint8)
        inner = (slice(4, -4), slice(4, -4))
        t = time.process_time()
        cv = next(tvl1_flow([a8, b8]))
        t_cv = time.process_time() - t
        t = time.process_time()
        v, u = optical_flow_tvl1(a8.astype(float), b8.astype(float))
        t_sk = time.process_time() - t
        # skimage returns the flow that warps image1 onto image0 in (row, col) order
        cv_med = np.median(cv[inner][..., 0]), np.median(cv[inner][..., 1])
        sk_med = np.median(u[inner]), np.median(v[inner])
        rows.append((size, dx, dy, cv_med, t_cv, sk_med, t_sk))
print(f"scikit-image {skimage.__version__}")
print(
    "| size | true (dx, dy) | OpenCV (x, y) | OpenCV ms | scikit-image (x, y) | scikit-image ms |"
)
print("|---|---|---|---|---|---|")
for size, dx, dy, cvm, tcv, skm, tsk in rows:
    print(
        f"| {size} | ({dx:+.1f}, {dy:+.1f}) | ({cvm[0]:+.2f}, {cvm[1]:+.2f}) | {1000 * tcv:.0f} "
        f"| ({skm[0]:+.2f}, {skm[1]:+.2f}) | {1000 * tsk:.0f} |"
    )
