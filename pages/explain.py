"""Explain: why this score, in points; how it would move; which characteristics act together."""

import streamlit as st

from ui.explain import curves, explain, grid, importance, song_interactions, song_items, typical_interactions
from ui.layout import chart, page_header
from ui.state import current_song, get_predictor, keep, kept_index, scored_songs
from virality.explain.explanation import baseline_choices, summary_sentence
from virality.explain.methods import METHODS
from virality.explain.plots import global_figure, interaction_heatmap, pair_figure, sensitivity_figure, waterfall_figure
from virality.explain.views import GLOBAL_SAMPLE_TRACKS, interaction_sentence, top_pairs
from virality.features import BY_NAME, FEATURE_NAMES
from virality.markdown import escape_markdown
from virality.plotting import TARGET_NAMES, TARGET_UNITS, signed

page_header("Explain", "Why this score? Which characteristics push it up or down, by how many points.")
predictor = get_predictor()
song = current_song()
choices = baseline_choices(predictor, scored_songs(), exclude=song)
targets = list(TARGET_NAMES) if predictor.fit is not None else ["popularity"]
target = targets[0]
if len(targets) > 1:
    target = st.radio("Explain", targets, key="explain_target", horizontal=True, format_func=TARGET_NAMES.get,
                      index=kept_index("explain_target", targets), on_change=keep, args=("explain_target",),
                      help="The popularity score (0–100 points) or the TikTok fit (0–100 %): how much the song's "
                           "characteristics resemble songs that trend on TikTok, compared with the wider catalogue.")
units = TARGET_UNITS[target]
left, right = st.columns(2)
method = left.selectbox("Method", list(METHODS), format_func=lambda key: METHODS[key].label, key="explain_method",
                        index=kept_index("explain_method", list(METHODS)), on_change=keep, args=("explain_method",),
                        help="Integrated Gradients is the default; all give points that (nearly) add up to the gap.")
label = right.selectbox("Compare with", list(choices), key="explain_baseline",
                        index=kept_index("explain_baseline", list(choices)), on_change=keep,
                        args=("explain_baseline",),
                        format_func=lambda t: "the typical TikTok track (training medians)" if t == "typical" else t)
ig, shapley = METHODS["ig"], METHODS["shapley"]
st.caption(f"Which method? Keep **{ig.label}**: instant, and its bars add up to the difference within "
           f"±{ig.tolerance} points. To check a surprising story, use **{shapley.label}**: slower, but it only "
           f"runs the model (no gradients) and adds up within ±{shapley.tolerance}.")
baseline = choices[label]
result = explain(song_items(song), song_items(baseline), label, method, target)

percent = "%" if target == "fit" else ""
score_col, base_col, gap_col = st.columns(3)
score_col.metric("This song", f"{result.score:.1f}{percent}")
base_col.metric(f"The {label} track" if label == "typical" else escape_markdown(label),
                f"{result.baseline_score:.1f}{percent}")
gap_col.metric("Difference", f"{signed(result.score - result.baseline_score)} {units}")
st.info(escape_markdown(summary_sentence(result)))
if result.delta_exceeds_tolerance:
    st.warning(f"The bars add up to the difference only within {signed(result.delta, 2)} {units} "
               f"(this method's tolerance is ±{result.tolerance} {units}).")
elif not METHODS[method].has_convergence_delta():
    st.caption(f"Feature ablation moves one characteristic at a time, so the bars need not add up: "
               f"{signed(-result.delta, 2)} {units} come from characteristics acting together.")
chart(waterfall_figure(result), "waterfall")
if target == "fit":
    st.caption("The bars and every view below are in percentage points of TikTok fit.")

st.subheader("If one characteristic changed")
st.caption("The score as each characteristic sweeps its whole valid range, the others as they are; "
           "the band is the interval where about 80 % of such songs really land." if target == "popularity" else
           "The TikTok fit as each characteristic sweeps its whole valid range, the others as they are.")
chart(sensitivity_figure(curves(song_items(song), target), predictor.interval_level, target), "sensitivity")

st.subheader("What matters overall")
st.caption(f"Mean size of each characteristic's attribution ({METHODS[method].label}, against the same baseline) "
           f"over the demo tracks and over {GLOBAL_SAMPLE_TRACKS} synthetic tracks drawn from the training tracks' "
           "summary shipped with the model.")
chart(global_figure(importance(method, song_items(baseline), target), target), "global")

st.subheader("Characteristics that act together")
here = song_interactions(song_items(song), song_items(baseline), target)
st.markdown(interaction_sentence(here, unit=units))
this_tab, typical_tab = st.tabs(["This song", "Typical tracks"])
with this_tab:
    st.caption(f"{units.capitalize()} that moving both characteristics from the baseline adds beyond moving "
               "each alone (0 = their effects simply add up).")
    chart(interaction_heatmap(here, "this song vs the baseline", target=target), "heat_song")
with typical_tab:
    st.caption(f"Friedman's H over typical tracks: the typical size, in {units}, of each pair's joint effect "
               "that is not the sum of their separate effects.")
    chart(interaction_heatmap(typical_interactions(target), "typical tracks", diverging=False, target=target),
          "heat_typical")

first_default, second_default, _ = top_pairs(here, 1)[0]
pick_a, pick_b = st.columns(2)
first = pick_a.selectbox("First characteristic", FEATURE_NAMES, index=FEATURE_NAMES.index(first_default),
                         format_func=lambda n: BY_NAME[n].label, key="pair_first")
second = pick_b.selectbox("Second characteristic", FEATURE_NAMES, index=FEATURE_NAMES.index(second_default),
                          format_func=lambda n: BY_NAME[n].label, key="pair_second")
if first == second:
    st.error(f"Pick two different characteristics to see the {TARGET_NAMES[target]} over both.")
else:
    chart(pair_figure(grid(song_items(song), first, second, target), first, second, song, target), "pair")
