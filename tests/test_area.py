"""Accuracy and area of a class map (Olofsson et al. 2014): the published worked example,
the formulas against a plain-loop implementation, the sample-size planner, streaming sampling
against a whole-array draw, reference points, and the ``cropglobe area`` commands."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

rasterio = pytest.importorskip("rasterio")

from affine import Affine  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from cropglobe.errors import DataFormatError, LabelError, ParameterError  # noqa: E402
from cropglobe.evaluate.area import (  # noqa: E402
    count_pixels,
    draw_sample,
    open_class_map,
    read_reference,
    sample_size,
    stratified_estimate,
)
from test_mapping import CLASSES as MAP_CLASSES  # noqa: E402
from test_mapping import _field_map, lgbm_model, stack_dirs  # noqa: E402, F401

# ---------------------------------------------------------------------------- Olofsson 2014
# Section 5 of Olofsson et al. (2014), RSE 148: 42-57. Table 8: sample counts (rows = map
# class = stratum, columns = reference class) and mapped areas in 30 m pixels (0.09 ha).
OLOFSSON_CLASSES = ("deforestation", "forest gain", "stable forest", "stable non-forest")
OLOFSSON_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
OLOFSSON_PIXELS = [200_000, 150_000, 3_200_000, 6_450_000]
# Table 9: estimated area proportions, to 4 decimals
OLOFSSON_P = [
    [0.0176, 0.0, 0.0013, 0.0011],
    [0.0, 0.0110, 0.0016, 0.0024],
    [0.0019, 0.0, 0.2967, 0.0213],
    [0.0040, 0.0020, 0.0179, 0.6212],
]
# section 5.2: estimate ± 95 % half-width as printed (accuracies to 2 decimals, areas in ha).
# The producer's accuracy half-widths of forest gain and stable non-forest are printed as
# 0.23 and 0.01, but their own eq. 7 gives 0.254 and 0.018 (checked by the loops below): the
# equation's values are used here
OLOFSSON_USERS = ([0.88, 0.73, 0.93, 0.96], [0.07, 0.10, 0.04, 0.02])
OLOFSSON_PRODUCERS = ([0.75, 0.85, 0.93, 0.96], [0.21, 0.25, 0.03, 0.02])
OLOFSSON_OVERALL = (0.95, 0.02)
OLOFSSON_AREA = ([21_158, 11_686, 285_770, 581_386], [6_158, 3_756, 15_510, 16_282])


def _olofsson() -> Any:
    # the paper's equations leave out the finite population correction
    return stratified_estimate(
        OLOFSSON_COUNTS, OLOFSSON_PIXELS, 0.09, OLOFSSON_CLASSES, finite_population_correction=False
    )


def test_olofsson_2014_worked_example() -> None:
    est = _olofsson()
    np.testing.assert_allclose(est.proportions, OLOFSSON_P, atol=5e-5)
    np.testing.assert_allclose(est.area, OLOFSSON_AREA[0], atol=0.5)  # 21,158 ha …
    # ± 6,158 ha …: the paper multiplies by z = 1.96 (1.959964 here: 0.1 ha less)
    np.testing.assert_allclose(1.96 * est.area_se, OLOFSSON_AREA[1], atol=0.5)
    np.testing.assert_allclose(est.area_ci, OLOFSSON_AREA[1], atol=1.0)
    np.testing.assert_allclose(est.users_accuracy, OLOFSSON_USERS[0], atol=0.005)
    np.testing.assert_allclose(est.users_accuracy_ci, OLOFSSON_USERS[1], atol=0.005)
    np.testing.assert_allclose(est.producers_accuracy, OLOFSSON_PRODUCERS[0], atol=0.005)
    np.testing.assert_allclose(est.producers_accuracy_ci, OLOFSSON_PRODUCERS[1], atol=0.005)
    assert round(est.overall_accuracy, 2) == OLOFSSON_OVERALL[0]
    assert round(est.overall_accuracy_ci, 2) == OLOFSSON_OVERALL[1]
    assert round(est.overall_accuracy, 3) == 0.947
    # the mapped deforestation area, 18,000 ha, is below the estimate: omission errors
    assert est.mapped_area[0] == pytest.approx(18_000)
    assert est.area.sum() == pytest.approx(est.total_area) == pytest.approx(900_000)
    table = est.table()
    assert list(table["class"]) == [*OLOFSSON_CLASSES, "all"]
    assert table["samples"].tolist() == [75, 75, 165, 325, 640]
    assert table.loc[0, "area_ha"] == pytest.approx(21_158, abs=0.5)
    assert table.iloc[-1]["users_accuracy"] == pytest.approx(est.overall_accuracy)
    d = json.loads(json.dumps(est.to_dict()))
    assert d["per_class"][0]["area"]["estimate"] == pytest.approx(21_158, abs=0.5)
    assert d["error_matrix"] == OLOFSSON_COUNTS and d["unit"] == "ha"


def _by_hand(n: list[list[int]], big_n: list[int], z: float = 1.959963984540054) -> dict[str, Any]:
    """Olofsson et al. (2014) eqs. 1-7, 9-11 in plain Python loops, with eq. 10 in its
    (W_i p_ik - p_ik²) form: an independent implementation to check the vectorised one."""
    k = len(big_n)
    total = sum(big_n)
    w = [x / total for x in big_n]
    ni = [sum(row) for row in n]
    p = [[w[i] * n[i][j] / ni[i] if ni[i] else 0.0 for j in range(k)] for i in range(k)]
    pk = [sum(p[i][j] for i in range(k)) for j in range(k)]
    overall = sum(p[j][j] for j in range(k))
    users = [n[i][i] / ni[i] if ni[i] else math.nan for i in range(k)]
    var_o = sum(w[i] ** 2 * users[i] * (1 - users[i]) / (ni[i] - 1) for i in range(k) if ni[i])
    var_u = [users[i] * (1 - users[i]) / (ni[i] - 1) if ni[i] else math.nan for i in range(k)]
    var_pk = [
        sum((w[i] * p[i][j] - p[i][j] ** 2) / (ni[i] - 1) for i in range(k) if ni[i])
        for j in range(k)
    ]
    producers, var_p = [], []
    for j in range(k):
        n_dot = sum(big_n[i] * n[i][j] / ni[i] for i in range(k) if ni[i])
        if pk[j] == 0:
            producers.append(math.nan)
            var_p.append(math.nan)
            continue
        pj = p[j][j] / pk[j]
        first = big_n[j] ** 2 * (1 - pj) ** 2 * var_u[j] if ni[j] else 0.0
        second = 0.0
        for i in range(k):
            if i != j and ni[i]:
                f = n[i][j] / ni[i]
                second += big_n[i] ** 2 * f * (1 - f) / (ni[i] - 1)
        producers.append(pj)
        var_p.append((first + pj**2 * second) / n_dot**2)
    return {
        "overall": overall,
        "overall_ci": z * math.sqrt(var_o),
        "users": users,
        "users_ci": [z * math.sqrt(v) if v == v else math.nan for v in var_u],
        "producers": producers,
        "producers_ci": [z * math.sqrt(v) if v == v else math.nan for v in var_p],
        "area_px": [total * x for x in pk],
        "area_ci_px": [z * total * math.sqrt(v) for v in var_pk],
    }


def _compare(est: Any, ref: dict[str, Any]) -> None:
    assert est.overall_accuracy == pytest.approx(ref["overall"], rel=1e-12)
    assert est.overall_accuracy_ci == pytest.approx(ref["overall_ci"], rel=1e-12)
    for mine, theirs in [
        (est.users_accuracy, ref["users"]),
        (est.users_accuracy_ci, ref["users_ci"]),
        (est.producers_accuracy, ref["producers"]),
        (est.producers_accuracy_ci, ref["producers_ci"]),
        (est.area, ref["area_px"]),
        (est.area_ci, ref["area_ci_px"]),
    ]:
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-9, equal_nan=True)


def test_the_vectorised_estimator_equals_plain_loops() -> None:
    _compare(
        stratified_estimate(OLOFSSON_COUNTS, OLOFSSON_PIXELS, finite_population_correction=False),
        _by_hand(OLOFSSON_COUNTS, OLOFSSON_PIXELS),
    )
    rng = np.random.default_rng(7)
    for _ in range(5):
        n = rng.integers(0, 30, (5, 5))
        n[np.arange(5), np.arange(5)] += 20
        pixels = rng.integers(1_000, 100_000, 5)
        pixels[4] = 0  # a class never mapped, found in the reference: area from omission
        n[4] = 0
        n[0, 4] = max(n[0, 4], 1)
        est = stratified_estimate(n, pixels, finite_population_correction=False)
        assert est.unit == "px"
        _compare(est, _by_hand(n.tolist(), pixels.tolist()))
        assert est.area[4] > 0 and math.isnan(est.users_accuracy[4])
        assert est.producers_accuracy[4] == 0 and est.producers_accuracy_se[4] == 0


def test_edge_cases_of_the_strata() -> None:
    n = [[10, 2, 0], [0, 0, 0], [1, 0, 9]]
    with pytest.raises(
        ParameterError,
        match=r"'maize' \(1,000 mapped pixels\) has 0 sample "
        r"points, needs 2 more",
    ):
        stratified_estimate(n, [500, 1000, 700], classes=["wheat", "maize", "other"])
    n[1][1] = 1
    with pytest.raises(ParameterError, match="has 1 sample point, needs 1 more"):
        stratified_estimate(n, [500, 1000, 700], classes=["wheat", "maize", "other"])
    # points in a stratum the map never shows
    with pytest.raises(ParameterError, match=r"the sample has points in \['maize'\]"):
        stratified_estimate(n, [500, 0, 700], classes=["wheat", "maize", "other"])
    # a class neither mapped nor found: zero area, undefined accuracies
    est = stratified_estimate([[10, 0, 2], [0, 0, 0], [1, 0, 9]], [500, 0, 700])
    assert est.area[1] == 0 and est.area_se[1] == 0
    assert math.isnan(est.users_accuracy[1]) and math.isnan(est.producers_accuracy[1])
    d = est.to_dict()
    assert d["per_class"][1]["users_accuracy"]["estimate"] is None  # NaN -> null in JSON
    # a class mapped on one pixel, that pixel in the sample: known exactly (no variance)
    est = stratified_estimate([[10, 0, 1], [0, 1, 0], [1, 0, 9]], [500, 1, 700])
    assert est.users_accuracy[1] == 1 and est.users_accuracy_se[1] == 0
    assert np.isfinite(est.area_se).all() and np.isfinite(est.producers_accuracy_se).all()
    with pytest.raises(ParameterError, match="square error matrix"):
        stratified_estimate([[1, 2, 3]], [10])
    with pytest.raises(ParameterError, match="confidence must lie between 0 and 1"):
        stratified_estimate(OLOFSSON_COUNTS, OLOFSSON_PIXELS, confidence=95)
    # another level: the 90 % interval is narrower by z(0.95) / z(0.975)
    e90 = stratified_estimate(
        OLOFSSON_COUNTS, OLOFSSON_PIXELS, confidence=0.9, finite_population_correction=False
    )
    assert e90.overall_accuracy_ci == pytest.approx(
        _olofsson().overall_accuracy_ci * 1.6448536269514722 / 1.959963984540054
    )


def _stehman(counts: list[list[int]], big_n: list[int], fpc: bool) -> dict[str, Any]:
    """Stehman's (2014) stratified estimators from one record per sample point (map class,
    reference class): totals sum_h N_h ybar_h, ratios R = Y / X with the linearised variance
    sum_h N_h² (1 − n_h / N_h) s²(y − R x)_h / n_h / X²; a second independent check."""
    k = len(big_n)
    units = [[(i, j)] * counts[i][j] for i in range(k) for j in range(k)]
    strata = [[u for part in units for u in part if u[0] == h] for h in range(k)]

    def total(y: Any) -> float:
        return sum(big_n[h] * sum(map(y, s)) / len(s) for h, s in enumerate(strata) if s)

    def var(y: Any) -> float:
        v = 0.0
        for h, s in enumerate(strata):
            if len(s) < 2:
                continue
            vals = [float(y(u)) for u in s]
            mean = sum(vals) / len(vals)
            s2 = sum((x - mean) ** 2 for x in vals) / (len(vals) - 1)
            v += big_n[h] ** 2 * (1 - len(s) / big_n[h] if fpc else 1.0) * s2 / len(s)
        return v

    def ratio(y: Any, x: Any) -> tuple[float, float]:
        big_x = total(x)
        if big_x == 0:
            return math.nan, math.nan
        r = total(y) / big_x
        return r, math.sqrt(var(lambda u: y(u) - r * x(u))) / big_x

    out: dict[str, Any] = {"users": [], "producers": [], "area": []}
    out["overall"] = ratio(lambda u: u[0] == u[1], lambda u: 1)
    for c in range(k):
        out["users"].append(ratio(lambda u, c=c: u[0] == c == u[1], lambda u, c=c: u[0] == c))
        out["producers"].append(ratio(lambda u, c=c: u[0] == c == u[1], lambda u, c=c: u[1] == c))
        out["area"].append(
            (total(lambda u, c=c: u[1] == c), math.sqrt(var(lambda u, c=c: u[1] == c)))
        )
    return out


def test_finite_population_correction_against_unit_level_estimators() -> None:
    """A class sampled completely is known: no variance (it had one, ±0.49 in user's accuracy,
    before the correction), and every estimate equals Stehman's with the correction."""
    cases = [
        ([[3, 1, 0], [0, 20, 5], [1, 2, 30]], [4, 1000, 5000]),  # class 0: every pixel
        ([[6, 3, 0, 0], [2, 7, 0, 1], [0, 0, 9, 1], [0, 0, 0, 0]], [9, 40, 12, 0]),
        (OLOFSSON_COUNTS, OLOFSSON_PIXELS),
    ]
    for counts, pixels in cases:
        for fpc in (True, False):
            est = stratified_estimate(counts, pixels, finite_population_correction=fpc)
            ref = _stehman(counts, pixels, fpc)
            got = [
                (est.overall_accuracy, est.overall_accuracy_se),
                *zip(est.users_accuracy, est.users_accuracy_se, strict=True),
                *zip(est.producers_accuracy, est.producers_accuracy_se, strict=True),
                *zip(est.area, est.area_se, strict=True),
            ]
            want = [ref["overall"], *ref["users"], *ref["producers"], *ref["area"]]
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)
    est = stratified_estimate(*cases[0])
    assert est.users_accuracy[0] == 0.75 and est.users_accuracy_se[0] == 0
    assert est.to_dict()["finite_population_correction"] is True
    with pytest.raises(ParameterError, match=r"'class 0' has 5 sample points but 4 mapped"):
        stratified_estimate([[4, 1, 0], [0, 20, 5], [1, 2, 30]], [4, 1000, 5000])


# ---------------------------------------------------------------------------- sample size
def test_sample_size_by_hand_and_the_papers_plan() -> None:
    # two equal classes, U = 0.8: S_i = 0.4, n = (0.4 / 0.02)² = 400 on a large map
    plan = sample_size([5_000_000] * 2, 0.8, target_se=0.02, allocation="proportional")
    assert plan.n_total == 400 and plan.per_class.tolist() == [200, 200]
    # the expected SE of that allocation, eq. 5 (with the fpc 1 − 200 / 5,000,000)
    assert plan.expected_se == pytest.approx(math.sqrt(2 * 0.25 * 0.16 / 199), rel=1e-4)
    # on 10,000 pixels eq. 13's finite term counts: 0.16 / (0.02² + 0.16 / 10,000) = 384.6,
    # and the plan's expected SE is then the target (it said 0.0196 for 400 points before)
    plan = sample_size([5_000, 5_000], 0.8, target_se=0.02, allocation="proportional")
    assert plan.n_total == 385 and plan.per_class.tolist() == [193, 192]
    v = [0.25 * 0.16 * (1 - n / 5_000) / (n - 1) for n in (193, 192)]
    assert plan.expected_se == pytest.approx(math.sqrt(sum(v))) == pytest.approx(0.02, abs=1e-4)
    # every pixel of both classes: known exactly
    assert sample_size([20, 20], 0.8, target_se=0.001, allocation="equal").expected_se == 0
    # Olofsson et al. (2014) section 5.1: W = 0.020, 0.015, 0.320, 0.645; U = 0.70, 0.60,
    # 0.90, 0.95; S(O) = 0.01 -> n = 641; proportional 13/10/205/413, equal 160 each
    u = [0.70, 0.60, 0.90, 0.95]
    s = sum(w * math.sqrt(x * (1 - x)) for w, x in zip([0.02, 0.015, 0.32, 0.645], u, strict=True))
    assert math.ceil((s / 0.01) ** 2) == 641
    assert sample_size(OLOFSSON_PIXELS, u, 0.01, allocation="proportional").per_class.tolist() == [
        13, 10, 205, 413
    ]  # fmt: skip
    assert sample_size(OLOFSSON_PIXELS, u, allocation="equal").per_class.tolist() == [160] * 4
    # the compromise: 100 in each rare class, the other 441 by area (146.2, 294.8)
    plan = sample_size(OLOFSSON_PIXELS, u, 0.01, min_per_class=100, classes=OLOFSSON_CLASSES)
    assert plan.n_total == 641 and plan.per_class.tolist() == [100, 100, 146, 295]
    assert "641 points" in plan.summary() and "deforestation 100" in plan.summary()
    assert sample_size(OLOFSSON_PIXELS, u).per_class.tolist() == [50, 50, 179, 362]
    # per class by name; a class smaller than the minimum gives all its pixels; none for empty
    plan = sample_size([30, 0, 90_000], {"a": 0.9, "b": 0.9, "c": 0.7}, classes=["a", "b", "c"])
    assert plan.per_class[0] == 30 and plan.per_class[1] == 0
    with pytest.raises(ParameterError, match=r"must lie in \(0, 1\]"):
        sample_size([10, 10], 80)


# ---------------------------------------------------------------------------- class maps
CLASSES = ("wheat", "maize", "grassland", "rapeseed")
TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_000_000.0)


def _array(h: int = 45, w: int = 70) -> np.ndarray:
    a = np.zeros((h, w), dtype=np.uint8)
    a[:, 25:] = 1
    a[20:, 50:] = 2
    a[40:43, 3:6] = 3  # 9 pixels of a rare class
    a[:4, :6] = 255  # no data
    return a


def write_class_map(
    path: Path,
    array: np.ndarray,
    *,
    classes: tuple[str, ...] | None = CLASSES,
    crs: str | None = "EPSG:32631",
    transform: Any = TRANSFORM,
    nodata: int | None = 255,
) -> Path:
    """A class map as cropglobe map writes it (uint8, nodata 255, class names in the tags),
    with 16 × 16 blocks so that a tiny map has several."""
    h, w = array.shape
    with rasterio.open(
        path, "w", driver="GTiff", height=h, width=w, count=1, dtype="uint8", crs=crs,
        transform=transform, nodata=nodata, tiled=True, blockxsize=16, blockysize=16,
    ) as ds:  # fmt: skip
        ds.write(array, 1)
        if classes is not None:
            ds.update_tags(CROPGLOBE_CLASSES=json.dumps(list(classes)))
    return path


def _whole_array_draw(a: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same draw on the array in memory: ranks among each class's pixels in row-major
    order, then a random order of the points."""
    rng = np.random.default_rng(seed)
    flat = a.ravel()
    picks = []
    for c in range(len(CLASSES)):
        where = np.flatnonzero(flat == c)
        take = min(n, where.size)
        picks.append(where[np.sort(rng.choice(where.size, take, replace=False))])
    pos = np.concatenate(picks)[rng.permutation(sum(p.size for p in picks))]
    return pos // a.shape[1], pos % a.shape[1]


def test_draw_sample_streams_exactly_the_whole_array_draw(tmp_path: Path) -> None:
    a = _array()
    path = write_class_map(tmp_path / "map.tif", a)
    assert count_pixels(path, strip_pixels=1).tolist() == [int((a == c).sum()) for c in range(4)]
    pts = draw_sample(path, 12, random_state=3, strip_pixels=1)  # 16-row strips
    whole = draw_sample(path, 12, random_state=3, strip_pixels=10**9)  # one strip
    pd.testing.assert_frame_equal(pts, whole)
    rows, cols = _whole_array_draw(a, 12, 3)
    np.testing.assert_array_equal(pts["row"], rows)
    np.testing.assert_array_equal(pts["col"], cols)
    # exact counts per class (the 9-pixel class gives all), each point on its class
    assert pts["map_class"].value_counts().to_dict() == {
        "wheat": 12, "maize": 12, "grassland": 12, "rapeseed": 9
    }  # fmt: skip
    assert [CLASSES[v] for v in a[pts["row"], pts["col"]]] == pts["map_class"].tolist()
    assert not pts.duplicated(["row", "col"]).any()
    # pixel centres in the map's CRS, and their longitude/latitude
    assert np.allclose(pts["x"], 500_000 + 10 * (pts["col"] + 0.5))
    assert np.allclose(pts["y"], 5_000_000 - 10 * (pts["row"] + 0.5))
    assert pts["lon"].between(2.9, 3.1).all() and pts["lat"].between(45.0, 45.2).all()
    assert pts["point_id"].tolist() == list(range(1, 46))
    # deterministic for a seed, another seed draws others
    pd.testing.assert_frame_equal(draw_sample(path, 12, random_state=3), pts)
    assert not draw_sample(path, 12, random_state=4)["row"].equals(pts["row"])
    # per-class numbers by name
    some = draw_sample(path, {"maize": 5, "rapeseed": 2}, random_state=0)
    assert some["map_class"].value_counts().to_dict() == {"maize": 5, "rapeseed": 2}


def test_class_map_names_and_pixel_area(tmp_path: Path) -> None:
    a = _array()
    cmap = open_class_map(write_class_map(tmp_path / "m.tif", a))
    assert cmap.classes == CLASSES and cmap.nodata == 255
    assert cmap.pixel_area_ha() == pytest.approx(0.01)  # 10 m pixels
    # names from the sidecar JSON when the tags hold none; refused when there is neither
    bare = write_class_map(tmp_path / "bare.tif", a, classes=None)
    with pytest.raises(DataFormatError, match=r"names no classes .*--classes"):
        open_class_map(bare)
    assert open_class_map(bare, ["a", "b", "c", "d"]).classes == ("a", "b", "c", "d")
    (tmp_path / "bare.json").write_text(json.dumps({"model": {"classes": list(CLASSES)}}))
    assert open_class_map(bare).classes == CLASSES
    # a class id without a name
    with pytest.raises(DataFormatError, match=r"holds class id 3 but names only 3 classes"):
        count_pixels(bare, ["a", "b", "c"])
    geo = write_class_map(
        tmp_path / "geo.tif", a, crs="EPSG:4326", transform=Affine(1e-4, 0, 3, 0, -1e-4, 45)
    )
    with pytest.raises(DataFormatError, match=r"geographic CRS .*gdalwarp .*--pixel-area"):
        open_class_map(geo).pixel_area_ha()


def test_reference_points_are_placed_checked_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = _array()
    path = write_class_map(tmp_path / "map.tif", a)
    pts = draw_sample(path, 6, random_state=0)
    pts["truth"] = pts["map_class"]
    extra = pd.DataFrame(
        {
            "x": [400_000.0, 500_005.0, np.nan],  # outside, on no data, no coordinates
            "y": [4_000_000.0, 4_999_995.0, 1.0],
            "truth": ["wheat", "wheat", "maize"],
        }
    )
    table = pd.concat([pts, extra], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="cropglobe.evaluate.area"):
        ref = read_reference(table, path, "truth")
    assert (ref.n_outside, ref.n_nodata, ref.n_no_position) == (1, 1, 1)
    assert "3 of the 27 points of the reference table dropped" in caplog.text
    assert ref.coords == "xy" and len(ref.map_ids) == 24
    assert np.all(ref.map_ids == ref.reference_ids)  # labelled as mapped
    # lon/lat give the same pixels
    by_lonlat = read_reference(pts.drop(columns=["x", "y"]), path, "truth")
    assert by_lonlat.coords == "lonlat"
    np.testing.assert_array_equal(by_lonlat.frame["row"], pts["row"])
    np.testing.assert_array_equal(by_lonlat.frame["col"], pts["col"])
    # a GeoParquet of WKB points (lon/lat)
    from cropglobe.io.tables import _wkb_point

    gp = pd.DataFrame(
        {
            "geometry": [_wkb_point(lo, la) for lo, la in zip(pts["lon"], pts["lat"], strict=True)],
            "truth": pts["truth"],
        }
    )
    gp.to_parquet(tmp_path / "points.parquet")
    g = read_reference(tmp_path / "points.parquet", path, "truth")
    assert g.coords == "geometry" and g.frame["row"].tolist() == pts["row"].tolist()
    # reference names that are not map classes: refused, or mapped explicitly
    pts.loc[0, "truth"] = "Maize"
    pts.loc[1, "truth"] = "corn"
    with pytest.raises(
        LabelError,
        match=r"\['Maize', 'corn'\].*did you mean 'maize' for "
        r"'Maize'.*the map's classes are \['wheat'",
    ):
        read_reference(pts, path, "truth")
    ok = read_reference(pts, path, "truth", label_map={"Maize": "maize", "corn": "maize"})
    assert ok.frame.loc[0, "reference"] == "maize"
    # an unknown column, with the nearest name
    with pytest.raises(DataFormatError, match=r"no column 'trut' \(did you mean 'truth'\?\)"):
        read_reference(pts, path, "trut")
    # x/y that are degrees, on a projected map
    deg = pts.assign(x=pts["lon"], y=pts["lat"])
    with pytest.raises(DataFormatError, match=r"no reference point .* look like longitude"):
        read_reference(deg, path, "truth", label_map={"Maize": "maize", "corn": "maize"})


# ---------------------------------------------------------------------------- the commands
def _invoke(args: list[str]) -> Any:
    from cropglobe.cli.main import cli

    return CliRunner().invoke(cli, args)


def _one_line_error(r: Any, text: str) -> None:
    assert r.exit_code == 2, r.output
    assert text in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output, r.output


@pytest.fixture(scope="module")
def cropglobe_map(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A map written by cropglobe map: the mapping tests' LightGBM model (``lgbm_model``) on
    their stack (``stack_dirs``), fixtures shared with tests/test_mapping.py."""
    from cropglobe.mapping import map_raster

    model = request.getfixturevalue("lgbm_model")
    folder, scl = request.getfixturevalue("stack_dirs")
    out = tmp_path_factory.mktemp("area_map") / "map.tif"
    map_raster(model, str(folder / "*.tif"), out, mask=str(scl / "*.tif"), block_size=32)
    return out


def test_cli_plan_sample_estimate_on_a_cropglobe_map(cropglobe_map: Path, tmp_path: Path) -> None:
    """End to end on a map of cropglobe map; the reference classes are the stack's true
    fields, so the estimate is a real accuracy assessment of that map."""
    r = _invoke(["area", "plan", str(cropglobe_map), "--target-se", "0.05", "-q"])
    assert r.exit_code == 0, r.output
    assert "points give a standard error of 0.05" in r.output and "wheat" in r.output
    points = tmp_path / "points.csv"
    r = _invoke(["area", "sample", str(cropglobe_map), "-n", "8", "--seed", "1", "-o", str(points)])
    assert r.exit_code == 0, r.output
    assert "8 points in each of the 4 mapped classes" in r.output
    pts = pd.read_csv(points)
    assert len(pts) == 32 and pts["reference"].isna().all()
    truth = _field_map()
    pts["reference"] = [
        MAP_CLASSES[truth[r, c]] for r, c in zip(pts["row"], pts["col"], strict=True)
    ]
    pts.to_csv(points, index=False)
    out, fig = tmp_path / "area.json", tmp_path / "area.png"
    args = ["area", "estimate", str(cropglobe_map), "--reference", str(points)]
    r = _invoke([*args, "--label-column", "reference", "-o", str(out), "--plot", str(fig)])
    assert r.exit_code == 0, r.output
    assert "overall accuracy" in r.output and "user's acc. %" in r.output
    assert fig.stat().st_size > 1000
    # the same numbers from the map's own pixels and the labels, computed here
    with rasterio.open(cropglobe_map) as ds:
        a = ds.read(1)
    k = len(MAP_CLASSES)
    pixels = np.bincount(a[a != 255], minlength=k)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (a[pts["row"], pts["col"]], truth[pts["row"], pts["col"]]), 1)
    expected = stratified_estimate(counts, pixels, 0.01, MAP_CLASSES)
    got = json.loads(out.read_text())
    assert got["overall_accuracy"]["estimate"] == pytest.approx(expected.overall_accuracy)
    assert [c["area"]["estimate"] for c in got["per_class"]] == pytest.approx(expected.area)
    assert got["notes"]["points_used"] == 32 and got["pixel_area"] == pytest.approx(0.01)
    # CSV: one row per class and the totals
    csv = tmp_path / "area.csv"
    r = _invoke([*args, "--label-column", "reference", "-o", str(csv), "-q"])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(csv)
    assert table["class"].tolist() == [*MAP_CLASSES, "all"]
    assert table["area_ha"].iloc[:-1].to_numpy() == pytest.approx(expected.area)


def test_cli_bad_inputs_are_one_line(tmp_path: Path) -> None:
    a = _array()
    path = write_class_map(tmp_path / "map.tif", a)
    pts = draw_sample(path, 5, random_state=0).assign(crop=lambda d: d["map_class"])
    labelled = tmp_path / "labelled.csv"
    pts.to_csv(labelled, index=False)
    est = ["area", "estimate", str(path), "--reference", str(labelled)]
    _one_line_error(
        _invoke(["area", "estimate", str(tmp_path / "none.tif"), "--reference", str(labelled),
                 "--label-column", "crop"]),
        "none.tif: no such file",
    )  # fmt: skip
    _one_line_error(_invoke([*est, "--label-column", "crops"]), "did you mean 'crop'?")
    # not a cropglobe map: no class names, until --classes names them
    bare = write_class_map(tmp_path / "bare.tif", a, classes=None)
    bare_est = ["area", "estimate", str(bare), "--reference", str(labelled), "--label-column"]
    _one_line_error(_invoke([*bare_est, "crop"]), "--classes")
    r = _invoke([*bare_est, "crop", "--classes", ",".join(CLASSES), "-q"])
    assert r.exit_code == 0 and "overall accuracy 100.0 ± 0.0 %" in r.output, r.output
    # no point inside the map
    far = tmp_path / "far.csv"
    pts.assign(x=pts["x"] + 1e6).to_csv(far, index=False)
    _one_line_error(
        _invoke(["area", "estimate", str(path), "--reference", str(far), "--label-column",
                 "crop"]),
        "no reference point of",
    )  # fmt: skip
    # a map in degrees: refused unless the pixel area is given
    geo = write_class_map(
        tmp_path / "geo.tif", a, crs="EPSG:4326", transform=Affine(1e-4, 0, 3, 0, -1e-4, 45)
    )
    geo_pts = tmp_path / "geo.csv"
    draw_sample(geo, 5, random_state=0).assign(crop=lambda d: d["map_class"]).to_csv(geo_pts)
    geo_est = ["area", "estimate", str(geo), "--reference", str(geo_pts), "--label-column", "crop"]
    _one_line_error(_invoke(geo_est), "--pixel-area")
    assert _invoke([*geo_est, "--pixel-area", "0.01", "-q"]).exit_code == 0
    # unknown reference classes; bad output suffixes; -n with plan options
    _one_line_error(
        _invoke([*est, "--label-column", "map_class", "--label-map", "wheat=barley"]),
        "label_map maps to ['barley']",
    )
    _one_line_error(_invoke([*est, "--label-column", "crop", "-o", str(tmp_path / "a.txt")]),
                    "unknown format '.txt'")  # fmt: skip
    _one_line_error(
        _invoke(["area", "sample", str(path), "-n", "5", "--target-se", "0.02", "-o",
                 str(tmp_path / "p.csv")]),
        "-n 5 sets the points per class",
    )  # fmt: skip
    # a stratum without enough points: named, with how many it needs
    few = pts[pts["map_class"] != "rapeseed"]
    few.to_csv(tmp_path / "few.csv", index=False)
    _one_line_error(
        _invoke(["area", "estimate", str(path), "--reference", str(tmp_path / "few.csv"),
                 "--label-column", "crop"]),
        "'rapeseed' (9 mapped pixels) has 0 sample points, needs 2 more",
    )  # fmt: skip


# ---------------------------------------------------------------------------- review fixes
def test_reference_points_on_one_pixel_another_map_or_another_crs(tmp_path: Path) -> None:
    """Two points on one pixel are refused (sampling is without replacement: a duplicated row
    counted twice before); a map_class that is not the map's (a sample drawn from another
    map) is refused; x/y in another CRS are read with xy_crs; X/Y columns in capitals."""
    a = _array()
    path = write_class_map(tmp_path / "map.tif", a)
    pts = draw_sample(path, 6, random_state=0)
    pts["truth"] = pts["map_class"]
    twice = pd.concat([pts, pts.iloc[[2]]], ignore_index=True)
    with pytest.raises(DataFormatError, match=r"1 pixel of the map holds more than one labelled "
                       r"point \(1 point too many; rows 3 and 25 of the table"):  # fmt: skip
        read_reference(twice, path, "truth")
    other = pts.iloc[[0]].assign(x=pts["x"].iloc[0] + 2.0, truth="grassland")  # same pixel
    with pytest.raises(DataFormatError, match="more than one labelled point"):
        read_reference(pd.concat([pts, other], ignore_index=True), path, "truth")
    # an unlabelled duplicate is dropped anyway: no error
    ok = read_reference(pd.concat([pts, other.assign(truth="")], ignore_index=True), path, "truth")
    assert len(ok.map_ids) == len(pts)
    # the strata of another map
    moved = pts.copy()
    moved.loc[3, "map_class"] = "wheat" if moved.loc[3, "map_class"] != "wheat" else "maize"
    with pytest.raises(DataFormatError, match=r"the map_class of 1 of its 24 points is not the "
                       r"class of map.tif at the point \(row 4 of the table"):  # fmt: skip
        read_reference(moved, path, "truth")
    # x/y in Web Mercator: placed with xy_crs, refused (with the hint) without it
    from rasterio.warp import transform

    mx, my = transform("EPSG:32631", "EPSG:3857", pts["x"].tolist(), pts["y"].tolist())
    merc = pts[["truth"]].assign(x=mx, y=my)
    with pytest.raises(DataFormatError, match=r"--xy-crs EPSG:…"):
        read_reference(merc, path, "truth")
    ref = read_reference(merc, path, "truth", xy_crs="EPSG:3857")
    assert ref.frame["row"].tolist() == pts["row"].tolist()
    assert ref.frame["col"].tolist() == pts["col"].tolist()
    with pytest.raises(ParameterError, match=r"xy_crs 'EPSG:999999' is not a CRS"):
        read_reference(merc, path, "truth", xy_crs="EPSG:999999")
    with pytest.raises(ParameterError, match=r"read from lon/lat columns"):
        read_reference(pts.drop(columns=["x", "y"]), path, "truth", xy_crs="EPSG:3857")
    caps = read_reference(pts.rename(columns={"x": "X", "y": "Y"}), path, "truth")
    assert caps.coords == "xy" and caps.frame["row"].tolist() == pts["row"].tolist()
    # on the command line
    merc.to_csv(tmp_path / "merc.csv", index=False)
    args = ["area", "estimate", str(path), "--reference", str(tmp_path / "merc.csv")]
    r = _invoke([*args, "--label-column", "truth", "--xy-crs", "EPSG:3857", "-q"])
    assert r.exit_code == 0 and "overall accuracy 100.0 ± 0.0 %" in r.output, r.output


def test_cli_sample_keeps_labels_and_refuses_other_layers(tmp_path: Path) -> None:
    """A new sample does not replace a labelled table (it did, silently); cropglobe map's
    uncertainty layer is named as such (it read as class ids without names); an interval
    has its estimate's decimals (``± 0`` before)."""
    path = write_class_map(tmp_path / "map.tif", _array())
    points = tmp_path / "points.csv"
    sample = ["area", "sample", str(path), "-n", "4", "-o", str(points), "-q"]
    assert _invoke(sample).exit_code == 0
    assert _invoke([*sample, "--seed", "1"]).exit_code == 0  # no labels yet: replaced
    pts = pd.read_csv(points, dtype={"reference": "string"})
    pts.loc[:2, "reference"] = pts.loc[:2, "map_class"]
    pts.to_csv(points, index=False)
    _one_line_error(_invoke(sample), "holds 3 labelled points (its 'reference' column)")
    assert pd.read_csv(points)["reference"].notna().sum() == 3
    # the uncertainty layer of cropglobe map: one band of uint8, as the class map
    unc = write_class_map(tmp_path / "map.uncertainty.tif", np.full((45, 70), 200, np.uint8))
    with rasterio.open(unc, "r+") as ds:
        ds.update_tags(CROPGLOBE_UNCERTAINTY="margin", CROPGLOBE_ENCODING="uint8 × 254")
    _one_line_error(
        _invoke(["area", "plan", str(unc)]), "is the uncertainty layer (margin) of cropglobe map"
    )
    from cropglobe.cli.area import _pm

    assert _pm(9.28, 0.0) == "9.28 ± 0.00" and _pm(0.0765, 0.0) == "0.0765 ± 0.0000"
    assert _pm(21_158.4, 6_157.5) == "21,158 ± 6,158" and _pm(0.56, 0.98) == "0.560 ± 0.980"


def test_counting_memory_is_bounded(tmp_path: Path) -> None:
    """count_pixels holds a strip and a chunk, not an int64 copy of the whole strip (a
    2,000 × 2,000 map took 40 MB, now under 16 MB); the chunks count as the whole does."""
    import tracemalloc

    a = np.tile(_array(50, 80), (40, 25))
    a[a == 255] = 0
    path = write_class_map(tmp_path / "big.tif", a)
    want = np.bincount(a.ravel(), minlength=4).tolist()
    tracemalloc.start()
    try:
        got = count_pixels(path).tolist()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == want and peak < 16e6, peak
    a[-1, -1] = 7  # an id without a name in the last chunk is found
    with pytest.raises(DataFormatError, match="holds class id 7"):
        count_pixels(write_class_map(tmp_path / "bad.tif", a))
