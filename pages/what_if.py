"""What-if: small, plausible edits that would raise the current song's predicted score."""

import streamlit as st

from ui.layout import chart, page_header, page_link
from ui.state import current_song, get_predictor, keep, kept_index, kept_value, set_song
from ui.whatif import find_edits
from virality.features import BY_NAME, FEATURE_NAMES, FEATURES, format_duration
from virality.plotting import CHANGED_CELL
from virality.whatif.plots import before_after_figure, edits_frame
from virality.whatif.search import PRODUCER_CHOICES

page_header("What-if", "Which small changes would raise this song's score? Set a goal and what you are willing to change.")
predictor = get_predictor()
song = current_song()
source = st.session_state.get("song_source")


def _bounds_control(name: str) -> tuple[float, float] | None:
    """A range slider for one allowed continuous characteristic, in Spotify units; None while
    left at the range of real tracks (the search's own limit)."""
    feature = BY_NAME[name]
    j = FEATURE_NAMES.index(name)
    dist = predictor.info.distribution
    plausible = (feature.snap(dist.low[j]), feature.snap(dist.high[j]))
    if feature.kind == "duration":  # whole seconds read better than milliseconds
        default = (int(plausible[0] // 1000), int(plausible[1] // 1000))
        chosen = st.slider(f"{feature.label} (seconds; real tracks {format_duration(plausible[0])}–"
                           f"{format_duration(plausible[1])})", int(feature.low // 1000), int(feature.high // 1000),
                           default, key=f"bound_{name}")
        return None if tuple(chosen) == default else (chosen[0] * 1000.0, chosen[1] * 1000.0)
    chosen = st.slider(f"{feature.label} ({feature.unit})", float(feature.low), float(feature.high),
                       (float(plausible[0]), float(plausible[1])), step=float(feature.step), key=f"bound_{name}")
    return None if tuple(chosen) == plausible else (float(chosen[0]), float(chosen[1]))


def _load(suggestion_song: dict, label: str) -> None:
    set_song(suggestion_song, source=label)
    st.session_state["whatif_loaded"] = label


score_now = predictor.predict_song(song).score
st.markdown(f"**Current song**{f' ({source})' if source else ''}: predicted **{score_now:.1f}**. "
            "Change it on the Predict page, or load a suggestion below.")
if loaded := st.session_state.pop("whatif_loaded", None):
    st.success(f"Loaded {loaded}: the Predict sliders and every page now use it.")
    page_link("Predict")

goal_col, amount_col, changes_col, k_col = st.columns([2, 2, 2, 2])
goals = ["gain", "target"]
goal = goal_col.radio("Goal", goals, key="whatif_goal", horizontal=True, index=kept_index("whatif_goal", goals),
                      format_func=lambda g: {"gain": "Raise by (points)", "target": "Reach a score"}[g],
                      on_change=keep, args=("whatif_goal",))
if goal == "gain":  # only one of the two is drawn, so each keeps its value for when it comes back
    amount = amount_col.number_input("Points to add", 0.5, 50.0, kept_value("whatif_gain", 5.0), step=0.5,
                                     key="whatif_gain", on_change=keep, args=("whatif_gain",))
else:
    amount = amount_col.number_input("Score to reach (0–100)", 0.0, 100.0,
                                     kept_value("whatif_target", float(min(100.0, round(score_now) + 5))),
                                     step=1.0, key="whatif_target", on_change=keep, args=("whatif_target",))
max_changes = changes_col.slider("At most this many changes", 1, 5, 3, key="whatif_max_changes")
k = k_col.slider("Suggestions", 1, 6, 4, key="whatif_k")

st.markdown("**What may change**")
st.caption("Ticked by default: what a producer can change in the mix, master, arrangement or edit without "
           "writing a new song (groove, intensity, loudness, acoustic vs produced sound, tempo, length). "
           "Key, mode and valence are songwriting; speechiness and instrumentalness change the vocal; "
           "liveness is how it was recorded. Tick them if you can change them too.")
vary = []
for i, feature in enumerate(FEATURES):
    if i % 4 == 0:  # rows of four: on a phone they stack in the characteristics' order
        boxes = st.columns(4)
    if boxes[i % 4].checkbox(feature.label, value=feature.name in PRODUCER_CHOICES, key=f"vary_{feature.name}"):
        vary.append(feature.name)

bounds = []
with st.expander("Limits (optional): keep a characteristic inside a range you choose"):
    st.caption("By default every edit stays inside the range of 99 % of real TikTok tracks.")
    for name in vary:
        if not BY_NAME[name].is_discrete:
            chosen = _bounds_control(name)
            if chosen is not None:
                bounds.append((name, chosen[0], chosen[1]))

try:
    result = find_edits(tuple((n, song[n]) for n in FEATURE_NAMES), goal, float(amount), tuple(vary),
                        tuple(bounds), int(max_changes), int(k))
except ValueError as err:
    st.error(str(err))
    st.stop()

if result.reached and result.suggestions:
    n = len(result.suggestions)
    st.success(f"{n} {'way' if n == 1 else 'ways'} to reach {result.target:.1f} from "
               f"{result.original_score:.1f}, each re-scored by the model.")
elif result.message:
    (st.info if result.reached else st.warning)(result.message)

cards = st.columns(max(len(result.suggestions), 1))
for i, (card, s) in enumerate(zip(cards, result.suggestions), 1):
    with card.container(border=True):
        st.metric(f"Suggestion {i}", f"{s.score:.1f}", f"{s.gain:+.1f} points")
        st.markdown("\n".join(f"- :green[**{edit}**]" for edit in s.edits()))
        st.caption(f"{predictor.interval_level:.0%} interval {s.low:.0f}–{s.high:.0f}")
        if not s.reached:
            st.caption(":orange[short of the target: the best found]")
        if s.out_of_distribution:
            st.caption(":orange[lands where real tracks are rare: treat this score as a guess]")
        st.button("Load into Predict", key=f"load_{i}", on_click=_load, args=(s.song, f"what-if suggestion {i}"),
                  width="stretch")

if result.suggestions:
    chart(before_after_figure(result, predictor.interval_level), "whatif_chart")
    values, changed = edits_frame(result)
    st.dataframe(values.style.apply(lambda _: changed.map(lambda c: f"background-color: {CHANGED_CELL}; font-weight: bold"
                                                          if c else ""), axis=None), width="stretch",
                 height=35 * (len(values) + 1) + 3)  # all 12 characteristics, no inner scrolling
    st.caption("Highlighted: the edits. The interval is wide because 12 audio numbers say little about "
               "popularity: a suggestion moves the model's guess, not the song's fate.")
