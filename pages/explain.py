"""Explain: why this score, in points; how it would move; which characteristics act together."""

import dataclasses

import streamlit as st

from ui.layout import page_header
from ui.state import SHARED_CACHE_TTL, current_song, get_predictor, scored_songs
from virality.data.demo import demo_tracks
from virality.explain.explanation import Explanation, baseline_choices, explain_song, summary_sentence
from virality.explain.methods import METHODS, TOLERANCE
from virality.explain.plots import global_figure, interaction_heatmap, pair_figure, sensitivity_figure, waterfall_figure
from virality.explain.views import (
    friedman_h,
    global_importance,
    interaction_sentence,
    pair_grid,
    pairwise_interactions,
    sample_typical_tracks,
    sensitivity_curves,
    top_pairs,
)
from virality.features import BY_NAME, FEATURE_NAMES
from virality.markdown import escape_markdown

page_header("Explain", "Why this score? Which characteristics push it up or down, by how many points.")
predictor = get_predictor()
song = current_song()
SAMPLE_SIZE, H_SAMPLE_SIZE = 300, 50


def _items(values: dict) -> tuple:
    return tuple((n, float(values[n])) for n in FEATURE_NAMES)


@st.cache_data(max_entries=128, ttl=SHARED_CACHE_TTL, show_spinner=False)
def explain_numbers(song_items: tuple, baseline_items: tuple, method: str) -> Explanation:
    return explain_song(get_predictor(), dict(song_items), dict(baseline_items), method=method)


def explain(song_items: tuple, baseline_items: tuple, label: str, method: str) -> Explanation:
    """The cached explanation, labelled after the cache: a label can hold a file name."""
    return dataclasses.replace(explain_numbers(song_items, baseline_items, method), baseline_label=label)


@st.cache_data(max_entries=64, ttl=SHARED_CACHE_TTL, show_spinner=False)
def curves(song_items: tuple):
    return sensitivity_curves(get_predictor(), dict(song_items))


@st.cache_data(max_entries=16, ttl=SHARED_CACHE_TTL, show_spinner="Averaging over typical tracks…")
def importance(method: str, baseline_items: tuple):
    sample = sample_typical_tracks(get_predictor().metadata, SAMPLE_SIZE)
    return global_importance(get_predictor(), demo_tracks(), sample, method, dict(baseline_items))


@st.cache_data(max_entries=64, ttl=SHARED_CACHE_TTL, show_spinner=False)
def song_interactions(song_items: tuple, baseline_items: tuple):
    return pairwise_interactions(get_predictor(), dict(song_items), dict(baseline_items))


@st.cache_data(max_entries=2, show_spinner="Measuring interactions over typical tracks…")
def typical_interactions():
    return friedman_h(get_predictor(), sample_typical_tracks(get_predictor().metadata, H_SAMPLE_SIZE, seed=1))


@st.cache_data(max_entries=64, ttl=SHARED_CACHE_TTL, show_spinner=False)
def grid(song_items: tuple, first: str, second: str):
    return pair_grid(get_predictor(), dict(song_items), first, second)


def keep(key: str) -> None:
    """Streamlit drops a widget's state when another page runs: keep a copy to restore."""
    st.session_state["kept_" + key] = st.session_state[key]


def kept_index(key: str, options: list[str]) -> int:
    kept = st.session_state.get("kept_" + key)
    return options.index(kept) if kept in options else 0


choices = baseline_choices(predictor, scored_songs(), exclude=song)
left, right = st.columns(2)
method = left.selectbox("Method", list(METHODS), format_func=METHODS.get, key="explain_method",
                        index=kept_index("explain_method", list(METHODS)), on_change=keep, args=("explain_method",),
                        help="Integrated Gradients is the default; all give points that (nearly) add up to the gap.")
label = right.selectbox("Compare with", list(choices), key="explain_baseline",
                        index=kept_index("explain_baseline", list(choices)), on_change=keep,
                        args=("explain_baseline",),
                        format_func=lambda t: "the typical TikTok track (training medians)" if t == "typical" else t)
baseline = choices[label]
result = explain(_items(song), _items(baseline), label, method)

score_col, base_col, gap_col = st.columns(3)
score_col.metric("This song", f"{result.score:.1f}")
base_col.metric(f"The {label} track" if label == "typical" else escape_markdown(label), f"{result.baseline_score:.1f}")
gap_col.metric("Difference", f"{result.score - result.baseline_score:+.1f} points")
st.info(escape_markdown(summary_sentence(result)))
if result.delta_exceeds_tolerance:
    st.warning(f"The bars add up to the difference only within {result.delta:+.2f} points "
               f"(this method's tolerance is ±{TOLERANCE[method]} points).")
elif TOLERANCE[method] is None:
    st.caption(f"Feature ablation moves one characteristic at a time, so the bars need not add up: "
               f"{-result.delta:+.2f} points come from characteristics acting together.")
st.plotly_chart(waterfall_figure(result), width="stretch", key="waterfall")

st.subheader("If one characteristic changed")
st.caption("The score as each characteristic sweeps its whole valid range, the others as they are; "
           "the band is the interval where about 80 % of such songs really land.")
st.plotly_chart(sensitivity_figure(curves(_items(song)), predictor.interval_level), width="stretch",
                key="sensitivity")

st.subheader("What matters overall")
st.caption(f"Mean size of each characteristic's attribution ({METHODS[method]}, against the same baseline) "
           f"over the demo tracks and over {SAMPLE_SIZE} synthetic tracks drawn from the training tracks' "
           "summary shipped with the model.")
st.plotly_chart(global_figure(importance(method, _items(baseline))), width="stretch", key="global")

st.subheader("Characteristics that act together")
here = song_interactions(_items(song), _items(baseline))
st.markdown(interaction_sentence(here))
this_tab, typical_tab = st.tabs(["This song", "Typical tracks"])
with this_tab:
    st.caption("Points that moving both characteristics from the baseline adds beyond moving each alone "
               "(0 = their effects simply add up).")
    st.plotly_chart(interaction_heatmap(here, "this song vs the baseline"), width="stretch", key="heat_song")
with typical_tab:
    st.caption("Friedman's H over typical tracks: the typical size, in points, of each pair's joint effect "
               "that is not the sum of their separate effects.")
    st.plotly_chart(interaction_heatmap(typical_interactions(), "typical tracks", diverging=False),
                    width="stretch", key="heat_typical")

first_default, second_default, _ = top_pairs(here, 1)[0]
pick_a, pick_b = st.columns(2)
first = pick_a.selectbox("First characteristic", FEATURE_NAMES, index=FEATURE_NAMES.index(first_default),
                         format_func=lambda n: BY_NAME[n].label, key="pair_first")
second = pick_b.selectbox("Second characteristic", FEATURE_NAMES, index=FEATURE_NAMES.index(second_default),
                          format_func=lambda n: BY_NAME[n].label, key="pair_second")
if first == second:
    st.error("Pick two different characteristics to see the score over both.")
else:
    st.plotly_chart(pair_figure(grid(_items(song), first, second), first, second, song), width="stretch",
                    key="pair")
