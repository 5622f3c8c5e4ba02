"""Evaluation: metrics exactly as the paper scores transfer, scenarios, experiments."""

from cropglobe.evaluate.metrics import aggregate_runs, confusion, score_transfer
from cropglobe.evaluate.scenarios import scenario

__all__ = ["aggregate_runs", "confusion", "scenario", "score_transfer"]
