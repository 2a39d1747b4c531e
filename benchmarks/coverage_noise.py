"""How far per-decile coverage strays by chance alone, for an interval that is exactly right.

    python -m benchmarks.coverage_noise      # reads benchmarks/results/models.json (no data set)

The model benchmark measures the shipped network's 80 % interval on every track once per
seed, split into 10 deciles of predicted score (~285 tracks each for 2,848 tracks). The
seeds re-use the same tracks, and a track's decile and outcome barely change between seeds
(the benchmark's std over seeds per decile is ~0.5 points, against 2.4 for independent
draws), so a decile's coverage is in effect one draw of ~285 yes/no outcomes. This script
simulates that draw for an interval that covers each track with probability exactly 80 %,
and says how often such a perfect interval would still put a decile outside ±3 points, and
where the benchmark's measured deciles fall in that noise. Seeded; runs in about a second.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import parser
from benchmarks.common import write_result as _write
from virality.model.report import load_results

N_DECILES, LEVEL, TOLERANCE, SIMULATIONS, SEED = 10, 0.80, 0.03, 200_000, 0


def perfect_interval_deciles(n_per_decile: int, rng: np.random.Generator) -> np.ndarray:
    """(SIMULATIONS, 10) per-decile coverage of an exactly-80 % interval over ``n_per_decile`` tracks."""
    return rng.binomial(n_per_decile, LEVEL, size=(SIMULATIONS, N_DECILES)) / n_per_decile


def two_sided_p(observed: float, n: int, rng: np.random.Generator) -> float:
    """Chance that a perfect interval's decile is at least as far from 80 % as ``observed``."""
    draws = rng.binomial(n, LEVEL, size=SIMULATIONS) / n
    return float(np.mean(np.abs(draws - LEVEL) >= abs(observed - LEVEL) - 1e-12))


def main() -> None:
    parser(__doc__.splitlines()[0]).parse_args()
    results = load_results()
    tracks, name = int(results["meta"]["tracks"]), "blend"
    coverage = results["candidates"][name]["coverage"]
    observed = np.asarray(coverage["by_decile_mean"])
    n = tracks // N_DECILES
    rng = np.random.default_rng(SEED)
    sims = perfect_interval_deciles(n, rng)
    outside = np.abs(sims - LEVEL) > TOLERANCE + 1e-12
    low, high = np.quantile(sims[:, 0], [0.025, 0.975])
    p_values = [two_sided_p(value, n, rng) for value in observed]
    payload = {
        "tracks": tracks, "tracks_per_decile": n, "simulations": SIMULATIONS, "seed": SEED,
        "p_all_deciles_within_tolerance": float(np.mean(~outside.any(axis=1))),
        "expected_deciles_outside": float(outside.sum(axis=1).mean()),
        "decile_95_range": [float(low), float(high)],
        "observed_by_decile": observed.tolist(), "observed_std_over_seeds": coverage["by_decile_std"],
        "p_values": p_values, "observed_outside": int(np.sum(np.abs(observed - LEVEL) > TOLERANCE)),
    }
    rows = "\n".join(f"| {d + 1} | {v:.1%} | {p:.2f} |" for d, (v, p) in enumerate(zip(observed, p_values)))
    markdown = f"""# Per-decile coverage: what chance alone does

`python -m benchmarks.coverage_noise` · reads `benchmarks/results/models.json` ({name}, {tracks:,}
tracks, ~{n} per decile) · {SIMULATIONS:,} seeded simulations of an interval that covers every
track with probability exactly {LEVEL:.0%}.

| for a perfect {LEVEL:.0%} interval, ~{n} tracks per decile | value |
|---|---|
| a decile's coverage, 95 % of the time within | {low:.1%} – {high:.1%} |
| chance that all 10 deciles land within ±{TOLERANCE * 100:.0f} points | {payload['p_all_deciles_within_tolerance']:.0%} |
| deciles outside ±{TOLERANCE * 100:.0f} points, on average | {payload['expected_deciles_outside']:.1f} |

Measured ({name}, mean over 3 seeds) and the chance a perfect interval strays at least as far:

| decile | coverage | p |
|---|---|---|
{rows}

{payload['observed_outside']} measured decile(s) outside ±{TOLERANCE * 100:.0f} points; a perfect interval has
{payload['expected_deciles_outside']:.1f} on average. With ~{n} tracks a decile, ±{TOLERANCE * 100:.0f} points is
inside the measurement's own noise.
"""
    _write("coverage_noise", payload, markdown)


if __name__ == "__main__":
    main()
