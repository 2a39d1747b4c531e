"""What-if: small, plausible edits that would raise the current song's predicted score."""

import streamlit as st

from ui.layout import chart, page_header, page_link
from ui.state import current_song, get_predictor, keep, kept_index, kept_value, set_song
from ui.whatif import find_edits
from virality.features import BY_NAME, FEATURE_NAMES, FEATURES, format_duration
from virality.markdown import escape_markdown
from virality.plotting import CHANGED_CELL, TARGET_NAMES, fit_text
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


now = predictor.predict_song(song)
fit_now = f" · TikTok fit **{fit_text(now.tiktok_fit)}**" if now.tiktok_fit is not None else ""
st.markdown(f"**Current song**{f' ({escape_markdown(source)})' if source else ''}: predicted **{now.score:.1f}**"
            f"{fit_now}. Change it on the Predict page, or load a suggestion below.")
if loaded := st.session_state.pop("whatif_loaded", None):
    st.success(f"Loaded {escape_markdown(loaded)}: the Predict sliders and every page now use it.")
    page_link("Predict")

kinds = list(TARGET_NAMES) if predictor.fit is not None else ["popularity"]
kind = kinds[0]
if len(kinds) > 1:
    kind = st.radio("Aim at", kinds, key="whatif_target_kind", horizontal=True, format_func=TARGET_NAMES.get,
                    index=kept_index("whatif_target_kind", kinds), on_change=keep, args=("whatif_target_kind",))
is_fit = kind == "fit"
value_now = now.tiktok_fit if is_fit else now.score
goal_col, amount_col, changes_col, k_col = st.columns([2, 2, 2, 2])
goals = ["gain", "target"]
goal_words = ({"gain": "Raise by (percentage points)", "target": "Reach a TikTok fit"} if is_fit else
              {"gain": "Raise by (points)", "target": "Reach a score"})
goal = goal_col.radio("Goal", goals, key="whatif_goal", horizontal=True, index=kept_index("whatif_goal", goals),
                      format_func=goal_words.get, on_change=keep, args=("whatif_goal",))
# only one amount is drawn at a time (per aim and goal), so each keeps its value for when it comes back
prefix, step = ("whatif_fit_", 10.0) if is_fit else ("whatif_", 5.0)
if goal == "gain":
    amount = amount_col.number_input("Percentage points of fit to add" if is_fit else "Points to add", 0.5, 50.0,
                                     kept_value(prefix + "gain", step), step=0.5, key=prefix + "gain", on_change=keep,
                                     args=(prefix + "gain",))
else:
    amount = amount_col.number_input("TikTok fit to reach (0–100 %)" if is_fit else "Score to reach (0–100)",
                                     0.0, 100.0, kept_value(prefix + "target", float(min(100.0, round(value_now) + step))),
                                     step=1.0, key=prefix + "target", on_change=keep, args=(prefix + "target",))
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
                        tuple(bounds), int(max_changes), int(k), kind)
except ValueError as err:
    st.error(str(err))
    st.stop()

if result.reached and result.suggestions:
    n = len(result.suggestions)
    what = "a TikTok fit of " if is_fit else ""
    unit = "%" if is_fit else ""
    st.success(f"{n} {'way' if n == 1 else 'ways'} to reach {what}{result.target:.1f}{unit} from "
               f"{result.original_score:.1f}{unit}, each re-scored by the model.")
elif result.message:
    (st.info if result.reached else st.warning)(result.message)

cards = st.columns(max(len(result.suggestions), 1))
for i, (card, s) in enumerate(zip(cards, result.suggestions), 1):
    with card.container(border=True):
        if is_fit:
            st.metric(f"Suggestion {i}", f"{s.score:.1f}%", f"{s.gain:+.1f} percentage points")
        else:
            st.metric(f"Suggestion {i}", f"{s.score:.1f}", f"{s.gain:+.1f} points")
        st.markdown("\n".join(f"- :green[**{edit}**]" for edit in s.edits()))
        st.caption(f"TikTok fit higher than {s.percentile:.0f}% of catalogue tracks" if is_fit else
                   f"{predictor.interval_level:.0%} interval {s.low:.0f}–{s.high:.0f}")
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
    st.caption("Highlighted: the edits. " + (
        "TikTok fit is a resemblance to songs that trend on TikTok, not a promise of going viral: a suggestion "
        "makes the song sound more like them as the model sees it." if is_fit else
        "The interval is wide because 12 audio numbers say little about popularity: a suggestion moves the "
        "model's guess, not the song's fate."))
