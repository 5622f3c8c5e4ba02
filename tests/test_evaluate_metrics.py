"""Scoring against hand-computed answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cropglobe.classes import CROPGLOBE_CLASSES
from cropglobe.errors import LabelError
from cropglobe.evaluate import aggregate_runs, score_transfer
from cropglobe.evaluate.scenarios import scenario


def test_oa_and_macro_f1_by_hand() -> None:
    # classes corn 0, wheat 3, other 6
    y_true = [0, 0, 0, 3, 3, 6]
    y_pred = [0, 0, 3, 3, 6, 6]
    s = score_transfer(y_true, y_pred)
    assert s["oa"] == pytest.approx(4 / 6)
    # corn: tp 2, pred 2, true 3 -> 4/5; wheat: tp 1, pred 2, true 2 -> 1/2; other: tp 1,
    # pred 2, true 1 -> 2/3
    f1 = {"corn": 0.8, "wheat": 0.5, "other": 2 / 3}
    assert s["per_class_f1"] == pytest.approx(f1)
    assert s["macro_f1"] == pytest.approx(np.mean(list(f1.values())))
    assert s["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert s["confusion"][0].tolist() == [2, 0, 0, 1, 0, 0, 0]


def test_exclusion_and_target_collapse() -> None:
    # AUS target: sugarcane 4, cotton 5, other 6. Model trained on corn/wheat/cotton/other.
    y_true = [4, 5, 5, 6, 6]
    y_pred = [0, 5, 3, 0, 6]
    s = score_transfer(y_true, y_pred, model_classes=[0, 3, 5, 6], target="AUS")
    # sugarcane sample excluded (model cannot output it); corn/wheat predictions -> other
    assert s["n_excluded"] == 1 and s["n_scored"] == 4
    # remaining: true [5,5,6,6], pred [5,6,6,6] -> OA 3/4
    assert s["oa"] == pytest.approx(0.75)
    assert s["present"] == ["cotton", "other"]
    assert s["per_class_f1"]["cotton"] == pytest.approx(2 / 3)
    assert s["per_class_f1"]["other"] == pytest.approx(0.8)


def test_arg_wheat_prediction_becomes_other() -> None:
    s = score_transfer([6, 0], [3, 0], target="ARG")
    assert s["oa"] == 1.0


def test_only_predictions_collapse_and_labelled_classes_count_as_mapped() -> None:
    """The release collapses the predictions, never the truth; a class the target's own labels
    hold (another dataset's wheat in AUS) is mapped there, so wheat predictions stay wheat."""
    # AUS truth wheat, wheat, cotton, other; predictions wheat, other, cotton, other
    s = score_transfer([3, 3, 5, 6], [3, 6, 5, 6], target="AUS")
    # wheat kept (the truth holds it): OA 3/4; wheat F1 2/3, cotton 1, other 2/3
    assert s["oa"] == pytest.approx(0.75)
    assert s["present"] == ["wheat", "cotton", "other"]
    assert s["per_class_f1"] == pytest.approx({"wheat": 2 / 3, "cotton": 1.0, "other": 2 / 3})
    # a corn prediction in the same target still becomes "other" (no corn in its truth)
    s = score_transfer([3, 6, 6], [3, 0, 6], target="AUS")
    assert s["oa"] == 1.0 and s["confusion"][6, 6] == 2 and s["confusion"][:, 0].sum() == 0
    # CropGlobe's own AUS labels never hold wheat: a wheat prediction of an "other" field is
    # right once collapsed, as in the release
    s = score_transfer([6, 6, 5], [3, 6, 5], target="AUS")
    assert s["oa"] == 1.0 and s["present"] == ["cotton", "other"]


def test_no_shared_class_is_an_error() -> None:
    with pytest.raises(LabelError, match="no sample of a class the model can output"):
        score_transfer([4, 5], [4, 5], model_classes=[0, 3], target="AUS")


def test_aggregate_mean_std_ddof0() -> None:
    runs = pd.DataFrame(
        {
            "method": ["a", "a", "b"],
            "oa": [0.8, 0.9, 0.5],
            "macro_f1": [0.6, 0.8, 0.4],
            "weighted_f1": [0.7, 0.7, 0.5],
        }
    )
    agg = aggregate_runs(runs, ["method"]).set_index("method")
    assert agg.loc["a", "oa_mean"] == pytest.approx(85.0)
    assert agg.loc["a", "oa_std"] == pytest.approx(5.0)
    assert agg.loc["b", "oa_std"] == 0.0 and agg.loc["a", "n_runs"] == 2


def test_scenarios() -> None:
    assert scenario("FRA", "BEL") == "cross-country"
    assert scenario("FRA", "USA") == "cross-continent"
    assert scenario("FRA", "CHN") == "cross-continent"
    assert scenario("FRA", "ARG") == "cross-hemisphere"
    assert scenario("USA", "AUS") == "cross-hemisphere"
    assert scenario("FRA", "FRA") == "within-country"


def test_out_of_range_indices_are_refused() -> None:
    with pytest.raises(LabelError, match="y_pred holds class index 9 but the vocabulary has 7"):
        score_transfer([0, 0], [0, 9])
    with pytest.raises(LabelError, match="y_pred holds class index -1"):
        score_transfer([0, 0], [0, -1])
    with pytest.raises(LabelError, match="model_classes \\[0, 7\\] are not all class indices"):
        score_transfer([0, 0], [0, 0], model_classes=[0, 7])


def test_per_sample_countries_collapse_each_by_its_own_rules() -> None:
    classes = CROPGLOBE_CLASSES
    corn, wheat, other = (classes.index(c) for c in ("corn", "wheat", "other"))
    y_true = np.array([wheat, other, wheat, other])
    y_pred = np.array([wheat, wheat, wheat, wheat])
    # FRA maps wheat; ARG's labels here hold no wheat, so its wheat predictions become other
    s = score_transfer(y_true, y_pred, target=["FRA", "FRA", "ARG", "ARG"], classes=classes)
    # FRA: wheat→wheat right, other→wheat wrong; ARG: wheat truth kept (labelled), so wheat
    # counts as mapped in ARG's samples: wheat→wheat right, other→wheat wrong
    assert s["oa"] == pytest.approx(0.5)
    s = score_transfer(
        np.array([wheat, other, corn, other]),
        y_pred,
        target=np.array(["FRA", "FRA", "ARG", "ARG"], dtype=object),
        classes=classes,
    )
    # ARG's samples hold no wheat: its two wheat predictions become other (one right)
    assert s["oa"] == pytest.approx(0.5)
    cm = s["confusion"]
    assert cm[other, other] == 1 and cm[corn, other] == 1 and cm[wheat, wheat] == 1
    with pytest.raises(LabelError, match="4 samples"):
        score_transfer(y_true, y_pred, target=["FRA", "ARG"], classes=classes)
