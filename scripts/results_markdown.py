"""Print a Markdown table of one or more transfer experiment folders (finished runs only).

python scripts/results_markdown.py runs/can_fra
python scripts/results_markdown.py runs/seeds_82_84 runs/seeds_85_91   # pooled seeds

Runs of several folders are pooled (a method/source/target/seed found twice counts once, from
the first folder), so seeds measured in separate experiments make one mean ± std.
"""

from __future__ import annotations

import sys

import pandas as pd

from cropglobe.evaluate.metrics import aggregate_runs
from cropglobe.evaluate.transfer import collect_runs


def main(folders: list[str]) -> None:
    parts = []
    for folder in folders:
        runs = collect_runs(folder)
        if runs.empty:
            sys.exit(f"Error: {folder} holds no finished run (runs/*/*/seed*/metrics.json)")
        parts.append(runs)
    runs = pd.concat(parts, ignore_index=True).drop_duplicates(
        ["method", "source", "target", "seed"], keep="first"
    )
    agg = aggregate_runs(runs, ["method", "source", "target", "scenario"])
    agg = agg.sort_values(["method", "source", "target"], kind="stable")
    print(
        "| method | source → target | scenario | OA (%) | macro-F1 (%) | weighted F1 (%) | seeds |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in agg.itertuples():
        print(
            f"| {r.method} | {r.source} → {r.target} | {r.scenario} | "
            f"{r.oa_mean:.1f} ± {r.oa_std:.1f} | {r.macro_f1_mean:.1f} ± {r.macro_f1_std:.1f} | "
            f"{r.weighted_f1_mean:.1f} ± {r.weighted_f1_std:.1f} | {r.n_runs} |"
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python scripts/results_markdown.py RUN_FOLDER [RUN_FOLDER ...]")
    main(sys.argv[1:])
