#!/usr/bin/env python3
"""Paired mode's A/A "inconclusive" rate by shape, from the rule alone (docs/paired.md,
"Choosing the defaults"): log-normal latencies, a Harrell-Davis p95 per block, the per-pair log
ratio, the Hodges-Lehmann CI at the signed-rank critical value (90%), "no change" when the whole
CI lies inside +-tolerance. No machine noise: what is left is the sampling error of the p95.

    python3 benches/paired-shape.py 4000 20 26    # requests a side, then block-pair counts
Needs numpy and scipy.
"""
import math
import sys

import numpy as np
from scipy import stats

rng = np.random.default_rng(7)


def hd_weights(n, q):
    a, b = q * (n + 1), (1 - q) * (n + 1)
    return np.diff(stats.beta.cdf(np.arange(n + 1) / n, a, b))


def critical(n, alpha):
    """Index of the Walsh average at the CI's lower end: the signed-rank null's alpha/2 point."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1
    for k in range(1, n + 1):
        new = counts.copy()
        new[k:] += counts[:-k]
        counts = new
    cdf = np.cumsum(counts) / counts.sum()
    return int(np.searchsorted(cdf, alpha / 2, side="right"))


def trial_rates(pairs, per_block, sigma, trials=600, tol=0.05):
    w = hd_weights(per_block, 0.95)
    c = critical(pairs, 0.10)
    iu = np.triu_indices(pairs)
    inconclusive, widths = 0, []
    for _ in range(trials):
        base = np.exp(rng.normal(0, sigma, (pairs, per_block)))
        head = np.exp(rng.normal(0, sigma, (pairs, per_block)))
        d = np.log(np.sort(head, 1) @ w) - np.log(np.sort(base, 1) @ w)
        walsh = np.sort(((d[:, None] + d[None, :]) / 2)[iu])
        lo, hi = math.exp(walsh[c]) - 1, math.exp(walsh[len(walsh) - 1 - c]) - 1
        widths.append(hi - lo)
        inconclusive += not (lo >= -tol and hi <= tol)
    return inconclusive / trials, float(np.median(widths))


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    shapes = [int(a) for a in sys.argv[2:]] or [14, 20, 26]
    for sigma in (0.25, 0.3):
        for pairs in shapes:
            per_block = total // pairs
            inc, width = trial_rates(pairs, per_block, sigma)
            print(
                f"{total} a side, sigma {sigma}: {pairs} pairs x {per_block}: "
                f"inconclusive {inc * 100:.1f}%, median CI width {width * 100:.1f}%",
                flush=True,
            )


if __name__ == "__main__":
    main()
