"""What the pages show, read like a new user would: plain words first, charts that name keys
and modes, no "None"/"NaN"/"-0.00", controls in order with the score in view, values kept."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import FORBIDDEN, open_app
from virality.batch.export import html_report
from virality.batch.plots import ranked_figure
from virality.batch.ranking import score_upload
from virality.features import FEATURE_NAMES, FEATURES, KEY_NAMES, default_song
from virality.model.report import comparison_words, headline, load_results

TEMPLATE_KEYS = ("hovertemplate", "texttemplate")  # plotly fills these in the browser
BAD_BATCH = (b"title,artist,danceability,energy,key,loudness,mode,speechiness,acousticness,instrumentalness,"
             b"liveness,valence,tempo,duration_ms\n"
             b"Good,A,0.7,0.6,5,-6,1,0.05,0.1,0,0.1,0.5,120,180000\n"
             b",B,0.7,0.6,5,-0.01,1,0.05,0.1,0,0.1,0.5,120,180000\n"
             b"Bad,C,abc,0.6,5,-6,1,0.05,0.1,0,0.1,0.5,120,180000\n"
             b"Gap,D,0.7,,5,-6,1,0.05,0.1,0,0.1,0.5,120,180000\n")


def chart_strings(spec) -> list[str]:
    """Every string a plotly figure spec puts on screen (labels, texts, ticks, titles)."""
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, dict):
        return [s for key, value in spec.items() if key not in TEMPLATE_KEYS for s in chart_strings(value)]
    if isinstance(spec, list):
        return [s for value in spec for s in chart_strings(value)]
    return []


def elements(at: AppTest) -> list:
    """Every element of the last run, in page order (sidebar first)."""
    found = []

    def walk(node):
        found.append(node)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def screen_problems(at: AppTest) -> list[str]:
    """What on the page reads "None", "NaN" or "-0.00": texts, labels, options, chart labels;
    a table cell the file left empty must have a placeholder (Streamlit prints "None")."""
    problems = []
    for node in elements(at):
        proto = getattr(node, "proto", None)
        kind = proto.DESCRIPTOR.name if proto is not None and hasattr(proto, "DESCRIPTOR") else type(node).__name__
        if kind == "PlotlyChart":
            problems += [f"chart: {s}" for s in chart_strings(json.loads(proto.spec)) if FORBIDDEN.search(s)]
            continue
        if kind == "Arrow":
            if node.value.isna().to_numpy().any() and proto.placeholder in ("", "None"):
                problems.append(f"table {getattr(node, 'key', '')} shows missing cells as None")
            continue
        for attribute in ("value", "label", "delta", "body", "help", "placeholder", "options"):
            try:
                value = getattr(node, attribute)
            except Exception:  # noqa: BLE001 — not every element has every attribute
                continue
            for text in (value if isinstance(value, list) else [value]):
                if isinstance(text, str) and FORBIDDEN.search(text):
                    problems.append(f"{kind}.{attribute}: {text[:120]}")
    return problems


def widget_keys(at: AppTest) -> list[str]:
    return [node.key for node in elements(at) if isinstance(getattr(node, "key", None), str)]


# --- plain words ------------------------------------------------------------------------

def test_headline_says_level_with_inside_two_standard_errors():
    assert comparison_words({"mean": -0.08, "se": 0.042}) == "level with"
    assert comparison_words({"mean": -0.3, "se": 0.05}) == "a little better than"
    assert comparison_words({"mean": -1.5, "se": 0.05}) == "better than"
    assert comparison_words({"mean": 0.3, "se": 0.05}) == "behind"


def test_sidebar_and_model_page_open_with_the_benchmarks_sentence(bundled):
    results = load_results()
    shipped = bundled.info.model.arch
    mae = results["candidates"][shipped]["mae"]["mean"]
    baselines = [k.split(" - ")[1] for k in results["paired"] if k.startswith(shipped + " - ")]
    best = min(baselines, key=lambda name: results["candidates"][name]["rmse"]["mean"])
    sentence = headline(results, shipped)
    assert sentence.startswith(f"Typically off by ±{mae:.0f} points of 100")
    assert f"{comparison_words(results['paired'][f'{shipped} - {best}'])} the best classical model" in sentence

    at = open_app("pages/model.py")
    assert at.sidebar.markdown[1].value == sentence  # right under the app's name
    assert at.markdown[0].value.endswith(sentence)  # the Model page's first words
    assert len(at.main.expander[0].dataframe) == 2
    folded = sum(len(e.dataframe) for e in at.main.expander)  # the metric tables (popularity, TikTok fit), folded away
    assert len(at.main.dataframe) == folded and len(at.main.expander) == 2


def test_explain_says_which_method_to_pick():
    at = open_app("pages/explain.py")
    line = next(c.value for c in at.caption if c.value.startswith("Which method?"))
    assert "Integrated Gradients" in line and "Shapley value sampling" in line


# --- none of None, NaN or -0.00 ---------------------------------------------------------

@pytest.mark.parametrize("path", ["pages/predict.py", "pages/explain.py", "pages/what_if.py", "pages/model.py"])
def test_no_none_nan_or_negative_zero_on_the_song_pages(path):
    at = open_app()
    at.slider(key="w_loudness").set_value(-0.0).run()  # a signed zero a slider can send
    at.slider(key="w_instrumentalness").set_value(1.0).run()
    if path != "pages/predict.py":
        at.switch_page(path).run()
    assert not at.exception
    assert screen_problems(at) == []
    if path == "pages/explain.py":
        at.selectbox(key="explain_method").set_value("ablation").run()
        assert screen_problems(at) == []


@pytest.mark.parametrize("fill", [False, True])
def test_no_none_nan_or_negative_zero_in_batch_or_its_report(fill, bundled):
    at = open_app("pages/batch.py")
    if fill:
        at.toggle(key="batch_fill").set_value(True).run()
    at.file_uploader(key="batch_upload").set_value(("gaps.csv", BAD_BATCH, "text/csv")).run()
    assert not at.exception
    assert screen_problems(at) == []
    result = score_upload(BAD_BATCH, "gaps.csv", bundled, fill=fill)
    assert len(result.problems)  # the report lists the bad cell (and, without fill, the blank one)
    report = re.sub(r"<script.*?</script>", "", html_report(result, bundled), flags=re.S)
    assert not FORBIDDEN.findall(report)
    figure = ranked_figure(result.table, result.labels, bundled).to_plotly_json()
    assert not [s for s in chart_strings(figure) if FORBIDDEN.search(s)]


def test_the_screen_check_finds_what_it_looks_for():
    assert FORBIDDEN.search("value None") and FORBIDDEN.search("NaN") and FORBIDDEN.search("-0.00 points")
    assert FORBIDDEN.search("−0.0") and not FORBIDDEN.search("-0.01") and not FORBIDDEN.search("Nonesuch")
    assert not FORBIDDEN.search("10.0") and not FORBIDDEN.search("0.00") and not FORBIDDEN.search("-0.05")


# --- phone width: order and the score in view ---------------------------------------------

def test_predict_controls_come_in_the_characteristics_order_after_the_score_line(bundled):
    at = open_app()
    keys = widget_keys(at)
    controls = [k for k in keys if k.startswith("w_")]
    assert controls == [f"w_{name}" for name in FEATURE_NAMES]  # a phone stacks them in this order
    score = f"**{bundled.predict_song(default_song()).score:.1f}** predicted popularity"
    texts = [getattr(n, "value", None) for n in elements(at)]
    line = next(i for i, t in enumerate(texts) if isinstance(t, str) and t.startswith(score))
    first_control = next(i for i, n in enumerate(elements(at)) if getattr(n, "key", None) == "w_danceability")
    assert line < first_control


def test_what_if_checkboxes_keep_the_characteristics_order():
    at = open_app("pages/what_if.py")
    boxes = [k for k in widget_keys(at) if k.startswith("vary_")]
    assert boxes == [f"vary_{f.name}" for f in FEATURES]


def test_plotly_toolbar_is_off_on_every_song_page():
    at = open_app()
    configs = []
    for path in ("pages/predict.py", "pages/explain.py", "pages/what_if.py", "pages/model.py"):
        at.switch_page(path).run()
        configs += [json.loads(c.proto.config) for c in at.get("plotly_chart")]
    assert len(configs) > 20 and all(c.get("displayModeBar") is False for c in configs)


# --- values kept -----------------------------------------------------------------------

def test_what_if_goal_keeps_its_value_when_the_goal_type_is_switched_back():
    at = open_app("pages/what_if.py")
    at.number_input(key="whatif_gain").set_value(10.0).run()
    at.radio(key="whatif_goal").set_value("target").run()
    at.number_input(key="whatif_target").set_value(70.0).run()
    at.radio(key="whatif_goal").set_value("gain").run()
    assert at.number_input(key="whatif_gain").value == 10.0
    at.radio(key="whatif_goal").set_value("target").run()
    assert at.number_input(key="whatif_target").value == 70.0
    at.switch_page("pages/predict.py").run()
    at.switch_page("pages/what_if.py").run()  # and across pages
    assert at.number_input(key="whatif_target").value == 70.0


def test_key_names_and_modes_label_the_axes(bundled):
    from virality.data.demo import demo_song
    from virality.explain.plots import pair_figure, sensitivity_figure
    from virality.explain.views import pair_grid, sensitivity_curves
    from virality.model.plots import surface_figure

    song = demo_song("Demo — Summer Hook")
    sensitivity = sensitivity_figure(sensitivity_curves(bundled, song)).layout
    axes = {f.name: sensitivity[f"xaxis{i + 1 if i else ''}"] for i, f in enumerate(FEATURES)}
    assert list(axes["key"].ticktext) == [k for k in KEY_NAMES if "/" not in k]  # C D E F G A B: a narrow panel
    assert list(axes["mode"].ticktext) == ["minor", "major"] and list(axes["mode"].tickvals) == [0, 1]
    pair = pair_figure(pair_grid(bundled, song, "key", "mode"), "key", "mode", song).layout
    assert list(pair.xaxis.ticktext) == [k.split("/")[0] for k in KEY_NAMES]  # all twelve on a wide map
    assert list(pair.yaxis.ticktext) == ["minor", "major"]
    import pandas as pd

    surface = pd.DataFrame({"x": [0.0, 0.0, 1.0, 1.0], "y": [0.0, 11.0, 0.0, 11.0], "points": [0.1, -0.2, 0.3, 0.0]})
    assert surface_figure(surface, ("mode", "key")).layout.yaxis.ticktext[11] == "B"
    from virality.model import additive
    from virality.model.plots import shape_figure

    shapes = additive.shape_functions(additive.load_additive())
    key_shape = shape_figure(shapes[shapes["characteristic"] == "key"], "key")
    assert list(key_shape.layout.xaxis.ticktext) == [k.split("/")[0] for k in KEY_NAMES]
    mode_shape = shape_figure(shapes[shapes["characteristic"] == "mode"], "mode")
    assert list(mode_shape.layout.xaxis.ticktext) == ["minor", "major"] and list(mode_shape.data[0].x) == [0, 1]
