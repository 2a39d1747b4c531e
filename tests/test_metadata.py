"""The bundle's metadata.json is read once, into typed sections: what a bundle lacks is named
when it loads, and the typed view says exactly what the file says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from virality.config import ARTIFACTS_DIR, TrainConfig
from virality.features import CONTINUOUS, FEATURE_NAMES
from virality.model.bundle import META_FILE, BundleError, load_bundle
from virality.model.prediction import Predictor

SECTIONS = ("features", "model", "config", "data", "training_medians", "metrics", "interval", "scores",
            "distribution")


def rewrite(folder, change) -> None:
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    change(meta)
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")


@pytest.mark.parametrize("section", SECTIONS)
def test_a_bundle_without_a_section_is_refused_naming_it(bundle_copy, section):
    rewrite(bundle_copy, lambda meta: meta.pop(section))
    with pytest.raises(BundleError, match=f"has no '{section}'.*retrain the model"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("section, field", [("distribution", "d2_threshold"), ("interval", "half_width"),
                                            ("scores", "predicted_quantiles"), ("data", "songs"),
                                            ("training_medians", "tempo")])
def test_a_missing_field_is_named_with_its_section(bundle_copy, section, field):
    rewrite(bundle_copy, lambda meta: meta[section].pop(field))
    with pytest.raises(BundleError, match=f"has no '{section}.{field}'"):
        load_bundle(bundle_copy)


def test_a_missing_metric_is_named_with_its_path(bundle_copy):
    rewrite(bundle_copy, lambda meta: meta["metrics"]["ridge"].pop("mae"))
    with pytest.raises(BundleError, match="has no 'metrics.ridge.mae'"):
        load_bundle(bundle_copy)


def test_the_typed_view_says_what_the_committed_file_says(bundled):
    raw = json.loads((ARTIFACTS_DIR / META_FILE).read_text(encoding="utf-8"))
    info = bundled.info
    assert info.feature_names == FEATURE_NAMES
    assert info.model.arch == raw["model"]["arch"] and dict(info.model.arch_kwargs) == raw["model"]["arch_kwargs"]
    assert info.config == TrainConfig.from_dict(raw["config"])
    assert info.data.songs == raw["data"]["songs"] and info.data.rows == raw["data"]["rows"]
    assert dict(info.training_medians) == raw["training_medians"]
    assert info.metrics.model.mae == raw["metrics"]["model"]["mae"]
    assert info.metrics.ridge.spearman == raw["metrics"]["ridge"]["spearman"]
    assert info.interval.level == raw["interval"]["level"] and info.interval.form == raw["interval"]["selection"]["form"]
    assert info.interval.calibration_tracks == raw["interval"]["calibration_tracks"]
    for name in ("mean", "precision", "low", "high", "quantiles", "normal_correlation"):
        assert np.array_equal(getattr(info.distribution, name), np.asarray(raw["distribution"][name])), name
    assert info.distribution.d2_threshold == raw["distribution"]["d2_threshold"]
    assert np.array_equal(info.scores.predicted_quantiles, raw["scores"]["predicted_quantiles"])
    assert dict(info.files) == raw["files"]


def test_the_typed_view_cannot_be_changed_by_a_reader(bundled):
    with pytest.raises(ValueError, match="read-only"):
        bundled.info.distribution.quantiles[0, 0] = 1.0
    with pytest.raises(AttributeError):
        bundled.info.interval.level = 0.5
    with pytest.raises(TypeError):
        bundled.info.training_medians["tempo"] = 1.0


def test_an_interval_from_an_older_bundle_still_reads(bundle_copy):
    """Bundles before cross-fitting had only a level and a half-width: symmetric intervals,
    no calibration story (the Model page then says so)."""
    rewrite(bundle_copy, lambda meta: meta.update(interval={"level": 0.8, "half_width": 10.0}))
    predictor = Predictor(*load_bundle(bundle_copy))
    assert predictor.info.interval.calibration is None and predictor.info.interval.form is None
    prediction = predictor.predict_song(predictor.typical_song)
    assert (prediction.low, prediction.high) == pytest.approx((prediction.score - 10, prediction.score + 10))


def test_the_quantile_scale_is_the_predictors_own(bundled):
    """What-if's quantile units are built once from the bundle's table: the median track is
    at 0.5 in every continuous characteristic, and the map is invertible."""
    scale = bundled.quantile_scale
    assert scale is bundled.quantile_scale
    quantiles = bundled.info.distribution.quantiles
    np.testing.assert_allclose(scale.to_quantile(quantiles[50][None])[0], 0.5)
    np.testing.assert_allclose(scale.to_raw(scale.to_quantile(quantiles[[10, 50, 90]])),
                               quantiles[[10, 50, 90]][:, list(CONTINUOUS)])
