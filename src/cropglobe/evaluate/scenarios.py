"""Transfer scenarios from the shipped country table: cross-country, -continent, -hemisphere."""

from __future__ import annotations

from cropglobe.classes import country

__all__ = ["SCENARIOS", "scenario"]

#: Scenarios in order of expected difficulty.
SCENARIOS: tuple[str, ...] = (
    "within-country",
    "cross-country",
    "cross-continent",
    "cross-hemisphere",
)


def scenario(source: str, target: str) -> str:
    """Tag a source -> target pair.

    ``within-country`` when both are the same country, ``cross-hemisphere`` when the
    hemispheres differ, ``cross-continent`` when the continents differ, else ``cross-country``
    (FRA -> BEL: cross-country; FRA -> USA, CHN: cross-continent; FRA -> ARG, USA -> AUS:
    cross-hemisphere).
    """
    s, t = country(source), country(target)
    if s.iso3 == t.iso3:
        return "within-country"
    if s.hemisphere != t.hemisphere:
        return "cross-hemisphere"
    if s.continent != t.continent:
        return "cross-continent"
    return "cross-country"
