import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from virality.data.demo import demo_tracks
from virality.features import BY_NAME, FEATURE_NAMES, default_song

FIXTURE = Path(__file__).with_name("fixtures") / "bundled_predictions.json"


def test_committed_artifacts_reproduce_recorded_predictions(bundled):
    recorded = json.loads(FIXTURE.read_text())
    assert recorded["model_sha256"] == bundled.info.files["model.pt"]
    for record in recorded["predictions"]:
        prediction = bundled.predict_song(record["song"])
        assert prediction.score == pytest.approx(record["predicted_popularity"], abs=1e-3)
        assert prediction.low == pytest.approx(record["low"], abs=1e-3)
        assert prediction.high == pytest.approx(record["high"], abs=1e-3)
        assert prediction.percentile == pytest.approx(record["percentile"], abs=1e-2)
        assert prediction.tiktok_fit == pytest.approx(record["tiktok_fit"], abs=1e-3)
    assert recorded["fit_sha256"] == bundled.info.files["fit.pt"]


def test_every_prediction_has_an_interval_and_percentile(bundled):
    tracks = demo_tracks()
    result = bundled.predict_frame(tracks[list(FEATURE_NAMES)])
    assert list(result.columns) == ["predicted_popularity", "low", "high", "percentile", "tiktok_fit"]
    assert result["tiktok_fit"].between(0, 100).all()
    assert (result["low"] <= result["predicted_popularity"]).all()
    assert (result["predicted_popularity"] <= result["high"]).all()
    assert result[["low", "high", "percentile"]].stack().between(0, 100).all()


def test_song_and_frame_predictions_agree(bundled):
    tracks = demo_tracks()
    frame = bundled.predict_frame(tracks[list(FEATURE_NAMES)])
    for i, row in tracks.iterrows():
        song = {n: row[n] for n in FEATURE_NAMES}
        assert bundled.predict_song(song).score == pytest.approx(frame.loc[i, "predicted_popularity"])


def test_percentile_is_monotone_in_score(bundled):
    scores = np.linspace(0, 100, 201)
    percentiles = bundled.percentile(scores)
    assert (np.diff(percentiles) >= 0).all() and percentiles[0] == 0 and percentiles[-1] == 100


def test_typical_song_is_in_distribution_and_extremes_are_not(bundled):
    assert not bundled.predict_song(default_song()).out_of_distribution
    odd = dict(default_song(), loudness=-45.0, tempo=240.0, speechiness=0.97)
    verdict = bundled.predict_song(odd)
    assert verdict.out_of_distribution and {"loudness", "tempo"} <= set(verdict.unusual)


def test_invalid_song_is_refused_with_the_name(bundled):
    with pytest.raises(ValueError, match="tempo"):
        bundled.predict_song({"tempo": "fast"})
    with pytest.raises(ValueError, match="unknown characteristic"):
        bundled.predict_song({"bpm": 120})


def test_every_physically_valid_song_gets_a_score(bundled):
    corners = pd.DataFrame([{n: getattr(BY_NAME[n], side) for n in FEATURE_NAMES} for side in ("low", "high")])
    result = bundled.predict_frame(corners)
    assert result["predicted_popularity"].between(0, 100).all()
