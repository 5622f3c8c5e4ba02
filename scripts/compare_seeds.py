"""Compare two sets of per-seed scores (e.g. two implementations) with Welch's t-test.

python scripts/compare_seeds.py docs/data/can_fra_h200_per_seed.csv "cropglobe cropnet-aug" release
python scripts/compare_seeds.py \
    docs/data/can_fra_h200_per_seed.csv,docs/data/can_fra_h100_per_seed.csv \
    "cropglobe cropnet-aug" release

The CSV has columns ``implementation, seed, oa, macro_f1`` (percent); several CSVs, joined by
commas, are pooled. Seeds of different implementations draw unrelated random streams, so the
sets are compared unpaired.
"""

from __future__ import annotations

import sys

import pandas as pd

from cropglobe.errors import CropGlobeError
from cropglobe.evaluate.compare import welch_comparison


def load(paths: str) -> pd.DataFrame:
    """The rows of one CSV or of several joined by commas (pooled)."""
    return pd.concat([pd.read_csv(p) for p in paths.split(",") if p], ignore_index=True)


def main(path: str, a: str, b: str, max_seed: int | None = None) -> None:
    try:
        table = load(path)
    except (OSError, pd.errors.ParserError) as exc:
        sys.exit(f"Error: cannot read the per-seed CSV: {exc}")
    if max_seed is not None:
        table = table[table["seed"] <= max_seed]
    sets = {name: table[table["implementation"] == name] for name in (a, b)}
    for name, rows in sets.items():
        if rows.empty:
            present = ", ".join(dict.fromkeys(table["implementation"]))
            sys.exit(f"Error: no rows for {name!r} in {path}; present: {present}")
    print(f"| metric | {a} | {b} | difference (95 % CI) | Welch p |")
    print("|---|---|---|---|---|")
    for metric in ("oa", "macro_f1"):
        x, y = sets[a][metric], sets[b][metric]
        try:
            r = welch_comparison(x, y)
        except CropGlobeError as exc:
            sys.exit(f"Error: {exc}")
        print(
            f"| {metric} | {x.mean():.1f} ± {x.std(ddof=0):.1f} (n={len(x)}) | "
            f"{y.mean():.1f} ± {y.std(ddof=0):.1f} (n={len(y)}) | {r['diff']:+.1f} "
            f"({r['low']:+.1f} … {r['high']:+.1f}) | {r['p']:.2f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: python scripts/compare_seeds.py CSV[,CSV...] IMPL_A IMPL_B [MAX_SEED]")
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else None)
