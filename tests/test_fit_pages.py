"""TikTok fit on every page (issue 15 point 4): what each page shows is what ``virality`` computes,
and a bundle without the fit model renders every page without it."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest
import streamlit as st

import ui.state
from tests.apptest import as_read, metric, open_app
from ui.layout import PAGES
from virality.batch.ranking import rank_by, score_upload
from virality.config import ADDITIVE_DIR
from virality.data.demo import DEMO_CSV
from virality.explain.explanation import explain_song, summary_sentence
from virality.explain.methods import METHODS
from virality.features import FEATURE_NAMES, default_song
from virality.model.prediction import load_predictor
from virality.plotting import FIT_MEANING, fit_text
from virality.whatif.search import PRODUCER_CHOICES, search


@pytest.fixture
def no_fit(monkeypatch):
    """The app on the additive bundle, which has no TikTok-fit model (every cache emptied
    before and after, so no page sees the other bundle's results)."""
    predictor = load_predictor(ADDITIVE_DIR)
    assert predictor.fit is None
    monkeypatch.setattr(ui.state, "load_predictor", lambda: predictor)
    ui.state.get_predictor.clear()
    st.cache_data.clear()
    yield predictor
    ui.state.get_predictor.clear()
    st.cache_data.clear()


def numbers(array) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array ``{"dtype", "bdata"}`` (base64)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array, float)


def markdown_texts(at) -> list[str]:
    return [as_read(m.value) for m in at.markdown]


# --- Predict -------------------------------------------------------------------------------

def test_predict_shows_the_fit_its_percentile_and_meaning_beside_the_score(bundled):
    at = open_app()
    at.slider(key="w_danceability").set_value(0.9).run()
    prediction = bundled.predict_song(dict(default_song(), danceability=0.9))
    assert metric(at, "TikTok fit") == fit_text(prediction.tiktok_fit) == f"{prediction.tiktok_fit:.0f}%"
    sentence = next(t for t in markdown_texts(at) if FIT_MEANING in t)
    assert f"higher than {prediction.fit_percentile:.0f}% of catalogue tracks" in sentence.replace("**", "")
    line = next(t for t in markdown_texts(at) if t.startswith(f"**{prediction.score:.1f}** predicted popularity"))
    assert f"TikTok fit **{fit_text(prediction.tiktok_fit)}**" in line


def test_every_page_renders_without_a_fit_model_and_shows_no_fit(no_fit):
    at = open_app()
    assert not [m for m in at.metric if m.label == "TikTok fit"]
    assert not [t for t in markdown_texts(at) if "TikTok fit" in t]
    for path, _, _ in PAGES[1:]:
        at.switch_page(path).run()
        assert not at.exception, (path, at.exception)
    at.switch_page("pages/batch.py").run()
    at.button(key="batch_demo_button").click().run()
    assert not at.exception and not at.get("radio")  # nothing to choose: popularity only
    assert "tiktok_fit" not in batch_table(at).columns


# --- Batch ---------------------------------------------------------------------------------

def batch_table(at):
    return next(d.value for d in at.dataframe if "predicted_popularity" in getattr(d.value, "columns", []))


def ranked_chart(at) -> dict:
    """Batch's ranked chart (plotly JSON): the one whose x axis is the 0–100 scale."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(s for s in specs if "(0–100" in s["layout"].get("xaxis", {}).get("title", {}).get("text", ""))


def test_batch_shows_the_fit_and_ranks_by_it_when_chosen(bundled):
    at = open_app("pages/batch.py")
    at.button(key="batch_demo_button").click().run()
    table = batch_table(at)
    demo = pd.read_csv(DEMO_CSV).rename(columns={"duration_ms": "duration"}).set_index("title")
    fit = pd.Series(bundled.fit_percent(demo[list(FEATURE_NAMES)].to_numpy()), index=demo.index)
    np.testing.assert_allclose(table.set_index("title")["tiktok_fit"].loc[fit.index], fit, atol=1e-3)
    assert table["title"].tolist() == table.sort_values("predicted_popularity", ascending=False)["title"].tolist()
    assert ranked_chart(at)["layout"]["xaxis"]["title"]["text"] == "predicted popularity (0–100)"

    at.radio(key="batch_rank_by").set_value("tiktok_fit").run()
    assert not at.exception
    table = batch_table(at)
    assert table["title"].tolist() == fit.sort_values(ascending=False).index.tolist()
    assert table["rank"].tolist() == list(range(1, len(demo) + 1))
    assert any("Ranked by TikTok fit" in c.value for c in at.caption)
    chart = ranked_chart(at)  # the chart draws the fit it ranks by
    assert chart["layout"]["xaxis"]["title"]["text"] == "TikTok fit (0–100 %)"
    np.testing.assert_allclose(numbers(chart["data"][0]["x"]), fit.sort_values(ascending=False).to_numpy()[:40],
                               atol=1e-3)
    at.switch_page("pages/predict.py").run()
    at.switch_page("pages/batch.py").run()
    assert at.radio(key="batch_rank_by").value == "tiktok_fit"  # kept like the other pages' controls


def test_rank_by_fit_keeps_every_column_and_the_rows_match():
    from virality.batch.export import export_table

    result = score_upload(DEMO_CSV.read_bytes(), DEMO_CSV.name, load_predictor())
    by_fit = rank_by(result, "tiktok_fit")
    assert list(by_fit.table.columns) == list(result.table.columns)
    assert by_fit.table["tiktok_fit"].is_monotonic_decreasing
    pd.testing.assert_frame_equal(by_fit.table.drop(columns="rank").sort_index(),
                                  result.table.drop(columns="rank").sort_index())
    assert list(by_fit.attributions.index) == list(by_fit.table.index)
    exported = export_table(by_fit)
    contract = ["predicted_popularity", "low", "high", "percentile", "tiktok_fit"]
    position = [list(exported.columns).index(c) for c in contract]
    assert position == list(range(position[0], position[0] + len(contract)))  # score's columns, in its order
    with pytest.raises(ValueError, match="cannot rank by"):
        rank_by(result, "energy")


# --- Explain -------------------------------------------------------------------------------

def waterfall(at) -> dict:
    """The waterfall figure the page drew (plotly JSON): x = [baseline, *attributions, total]."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(s for s in specs if s["data"] and s["data"][0]["type"] == "waterfall")


def test_explain_fit_shows_attributions_that_add_up_to_the_fit_difference(bundled):
    at = open_app()
    at.slider(key="w_energy").set_value(0.9).run()
    at.switch_page("pages/explain.py").run()
    assert waterfall(at)["layout"]["xaxis"]["title"]["text"] == "popularity (points)"
    at.radio(key="explain_target").set_value("fit").run()
    assert not at.exception
    song = dict(default_song(), energy=0.9)
    fit_song, fit_typical = bundled.fit_percent(np.array([[song[n] for n in FEATURE_NAMES],
                                                         [bundled.typical_song[n] for n in FEATURE_NAMES]]))
    assert metric(at, "This song") == f"{fit_song:.1f}%" and metric(at, "The typical track") == f"{fit_typical:.1f}%"
    assert metric(at, "Difference").endswith("percentage points of fit")
    figure = waterfall(at)
    bars = numbers(figure["data"][0]["x"])[1:-1]
    assert len(bars) == len(FEATURE_NAMES)
    assert sum(bars) == pytest.approx(fit_song - fit_typical, abs=METHODS["ig"].tolerance)
    assert figure["layout"]["xaxis"]["title"]["text"] == "TikTok fit (%)"
    assert all("percentage points of fit" in h for h in figure["data"][0]["hovertext"][1:-1])
    expected = explain_song(bundled, song, target="fit")
    assert as_read(at.info[0].value) == summary_sentence(expected)
    at.switch_page("pages/what_if.py").run()
    at.switch_page("pages/explain.py").run()
    assert at.radio(key="explain_target").value == "fit"  # kept like the other controls


def test_explain_fit_draws_every_view_below_the_waterfall_in_fit(bundled):
    """The sweeps, importance, interactions and pair grid are of the fit too, in its units."""
    at = open_app()
    at.switch_page("pages/explain.py").run()
    at.radio(key="explain_target").set_value("fit").run()
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    song = np.array([[default_song()[n] for n in FEATURE_NAMES]])
    fit_song = bundled.fit_percent(song)[0]
    sweeps = next(s for s in specs if any(t.get("name") == "TikTok fit" for t in s["data"]))
    dots = [numbers(t["y"])[0] for t in sweeps["data"] if t.get("name") == "this song" or
            (t.get("mode") == "markers" and t.get("marker", {}).get("color") == "black")]
    assert len(dots) == len(FEATURE_NAMES) and np.allclose(dots, fit_song, atol=0.05)
    assert not any("interval" in (t.get("name") or "") for t in sweeps["data"])  # the fit has no interval band
    assert sweeps["layout"]["yaxis"]["title"]["text"] == "TikTok fit (%)"
    importance = next(s for s in specs if s["data"][0]["type"] == "bar" and s["data"][0].get("orientation") == "h")
    assert importance["layout"]["xaxis"]["title"]["text"] == "mean |attribution| (percentage points of fit)"
    heatmaps = [s for s in specs if s["data"][0]["type"] == "heatmap"]
    assert [h["data"][0]["colorbar"]["title"]["text"] for h in heatmaps] == ["fit points", "fit points", "fit %"]
    pair = heatmaps[-1]
    assert np.nanmin(numbers(pair["data"][0]["z"])) >= 0 and np.nanmax(numbers(pair["data"][0]["z"])) <= 100
    assert any("percentage points of fit" in m for m in markdown_texts(at) if "combinations" in m or "acts together" in m)


# --- What-if -------------------------------------------------------------------------------

def test_whatif_aimed_at_fit_shows_suggestions_that_really_raise_fit(bundled):
    at = open_app("pages/what_if.py")
    at.radio(key="whatif_target_kind").set_value("fit").run()
    at.number_input(key="whatif_fit_gain").set_value(10.0).run()
    assert not at.exception
    song = default_song()
    fit_now = bundled.predict_song(song).tiktok_fit
    expected = search(bundled, song, gain=10.0, vary=list(PRODUCER_CHOICES), max_changes=3, k=4, target_kind="fit")
    assert expected.suggestions
    assert [m.value for m in at.metric] == [f"{s.score:.1f}%" for s in expected.suggestions]
    for s in expected.suggestions:  # each re-scored on its own, as the page shows it
        rescored = bundled.predict_song(s.song).tiktok_fit
        assert rescored == pytest.approx(s.score, abs=1e-3) and rescored > fit_now
        assert not s.reached or rescored >= fit_now + 10.0
    assert any("TikTok fit of" in m.value for m in at.success)
    at.button(key="load_1").click().run()
    at.switch_page("pages/predict.py").run()
    assert metric(at, "TikTok fit") == fit_text(bundled.predict_song(expected.suggestions[0].song).tiktok_fit)


def test_whatif_goals_keep_their_values_per_aim():
    at = open_app("pages/what_if.py")
    at.number_input(key="whatif_gain").set_value(7.0).run()
    at.radio(key="whatif_target_kind").set_value("fit").run()
    at.number_input(key="whatif_fit_gain").set_value(12.0).run()
    at.radio(key="whatif_goal").set_value("target").run()
    at.number_input(key="whatif_fit_target").set_value(80.0).run()
    at.radio(key="whatif_goal").set_value("gain").run()
    assert at.number_input(key="whatif_fit_gain").value == 12.0
    at.radio(key="whatif_target_kind").set_value("popularity").run()
    assert at.number_input(key="whatif_gain").value == 7.0
    at.radio(key="whatif_target_kind").set_value("fit").run()
    at.radio(key="whatif_goal").set_value("target").run()
    assert at.number_input(key="whatif_fit_target").value == 80.0 and not at.exception


# --- Model ---------------------------------------------------------------------------------

def fit_results(margin: float, se: float) -> dict:
    """A results file in ``benchmarks/fit.py``'s shape, with a chosen network − LightGBM margin."""
    metrics = ("auc", "log_loss", "brier", "ece")
    entry = lambda base: {f"{p}{m}": {"mean": base + i / 100, "std": 0.01}  # noqa: E731
                          for p in ("", "era_") for i, m in enumerate(metrics)}
    return {"meta": {"folds": 5, "seeds": [0, 1, 2], "quick": False, "tiktok_tracks": 2848, "catalogue_tracks": 22089,
                     "command": "python -m benchmarks.fit --data PATH --catalogue PATH"},
            "candidates": {"logistic_regression": entry(0.70), "lightgbm": entry(0.76), "network": entry(0.76 + margin)},
            "paired": {"auc": {"mean": margin, "std": se * 3.9, "se": se, "better": 9, "n": 15},
                       "era_auc": {"mean": -0.05, "std": 0.02, "se": 0.005, "better": 1, "n": 15}}}


def test_model_page_shows_the_fit_headline_reliability_and_benchmark(bundled, monkeypatch, tmp_path):
    from virality.model import fit_report

    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fit_results(margin=0.004, se=0.003)))
    monkeypatch.setattr(fit_report, "FIT_RESULTS_FILE", path)
    at = open_app("pages/model.py")
    texts = markdown_texts(at)
    for sentence in fit_report.fit_headline(bundled.info.fit):
        assert sentence in texts
    assert any("sounds modern" in t and "six genre playlists from 2020" in t for t in texts)
    figure = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.key == "fit_reliability")
    bins = fit_report.reliability_frame(bundled.info.fit)
    np.testing.assert_allclose(numbers(figure["data"][1]["x"]), bins["predicted"])
    np.testing.assert_allclose(numbers(figure["data"][1]["y"]), bins["observed"])
    table = next(d.value for d in at.dataframe if "era AUC" in getattr(d.value, "columns", []))
    assert table["model"].tolist() == ["network", "LightGBM", "logistic regression"]
    assert table.loc[table["model"] == "network", "AUC"].item() == pytest.approx(0.764)
    sentence = next(t for t in texts if t.startswith("In the benchmark the network is"))
    assert "level with LightGBM overall" in sentence and "behind LightGBM on the era check" in sentence
    assert "beats" not in " ".join(texts)


def test_a_margin_is_level_only_inside_two_standard_errors():
    from virality.model.fit_report import margin_verdict

    assert margin_verdict(0.005, 0.003) == "level with" and margin_verdict(-0.006, 0.003) == "level with"
    assert margin_verdict(0.007, 0.003) == "ahead of" and margin_verdict(-0.007, 0.003) == "behind"


def test_model_page_without_the_fit_benchmark_says_how_to_make_it(monkeypatch, tmp_path):
    from virality.model import fit_report

    monkeypatch.setattr(fit_report, "FIT_RESULTS_FILE", tmp_path / "missing.json")
    at = open_app("pages/model.py")
    assert any("python -m benchmarks.fit" in i.value for i in at.info)
    assert at.get("plotly_chart") and not at.exception


def curve_results(vary: str, mean: float, se: float, quick: bool = False) -> dict:
    """A results file in ``benchmarks/fit_curve.py``'s shape, with a chosen last doubling."""
    return {"meta": {"vary": vary, "quick": quick,
                     "command": f"python -m benchmarks.fit_curve --data PATH --catalogue PATH --vary {vary}"},
            "last_doubling": {"network:auc": {"mean": mean, "se": se, "better": 5, "n": 5}}}


def test_the_limit_sentence_names_the_side_whose_size_matters():
    from virality.model.fit_report import fit_limit_sentence

    tiktok, catalogue = curve_results("tiktok", 0.006, 0.0015), curve_results("catalogue", 0.0007, 0.0009)
    sentence = fit_limit_sentence({"tiktok": tiktok, "catalogue": catalogue})
    assert "how many TikTok tracks there are, not the model" in sentence
    assert "+0.0060 ± 0.0015 s.e." in sentence and "+0.0007 ± 0.0009 s.e." in sentence
    assert "--vary tiktok" in sentence and "--vary catalogue" in sentence
    both_matter = fit_limit_sentence({"tiktok": tiktok, "catalogue": curve_results("catalogue", 0.006, 0.001)})
    assert "neither side's size alone" in both_matter
    assert "neither" in fit_limit_sentence({"tiktok": curve_results("tiktok", -0.006, 0.001), "catalogue": catalogue})
    assert fit_limit_sentence({"tiktok": tiktok}) is None
    assert fit_limit_sentence({"tiktok": tiktok, "catalogue": curve_results("catalogue", 0, 0.001, quick=True)}) is None


def test_model_page_says_what_limits_the_fit_from_the_curve_files(bundled, monkeypatch, tmp_path):
    from virality.model import fit_report

    files = {side: tmp_path / f"fit_curve_{side}.json" for side in ("tiktok", "catalogue")}
    files["tiktok"].write_text(json.dumps(curve_results("tiktok", 0.008, 0.002)))
    files["catalogue"].write_text(json.dumps(curve_results("catalogue", -0.0007, 0.0008)))
    monkeypatch.setattr(fit_report, "CURVE_FILES", files)
    texts = markdown_texts(open_app("pages/model.py"))
    assert fit_report.fit_limit_sentence(fit_report.load_fit_curves(files)) in texts
    files["catalogue"].unlink()
    assert not any(t.startswith("Why the fit is not sharper") for t in markdown_texts(open_app("pages/model.py")))
