"""Figures quoted in MODEL_CARD.md beyond the benchmark table (no training, seconds).

    python -m benchmarks.model_card --data ../shared/data/tiktok_tracks.csv
"""

from __future__ import annotations

import argparse
import json

from virality.model.report import duplicate_summary, load_results, paired_difference


def main() -> None:
    parser = argparse.ArgumentParser(description="figures quoted in MODEL_CARD.md beyond the benchmark table")
    parser.add_argument("--data", help="tracks CSV: also count its duplicated tracks")
    args = parser.parse_args()
    results = load_results()
    best = results["meta"]["best_network"]
    report = {f"additive - {best}": paired_difference(results, "additive", best)}
    if args.data:
        report["duplicates"] = duplicate_summary(args.data)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
