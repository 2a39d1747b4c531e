"""Predict: move the sliders, watch the popularity score (the home page of `streamlit run app.py`)."""

import streamlit as st

from ui.audio import audio_marks, audio_panel
from ui.controls import song_controls
from ui.layout import chart, page_header
from ui.state import get_predictor, remember_song, set_song
from virality.data.demo import demo_song, demo_tracks
from virality.features import FEATURE_NAMES, default_song, parse_song_json
from virality.markdown import escape_markdown
from virality.model.plots import score_figure
from virality.plotting import FIT_MEANING, fit_text
from virality.session import song_link, song_to_json

SONG_FILE_KEY, SONG_FILE_NOTE = "song_file", "song_file_note"

page_header("Predict", "Will this song take off on TikTok? Set its characteristics and watch the score.")
predictor = get_predictor()


def _load_demo() -> None:
    title = st.session_state["demo_pick"]
    if title:
        set_song(demo_song(title), source=title)


def _open_song_file() -> None:
    """Load the uploaded song file (the JSON ``--song`` reads) into the controls; on a bad file
    keep the song and say why."""
    upload = st.session_state.get(SONG_FILE_KEY)
    if upload is None:
        return
    try:
        song, filled = parse_song_json(upload.getvalue().decode("utf-8"))
    except UnicodeDecodeError:
        st.session_state[SONG_FILE_NOTE] = ("error", f"{escape_markdown(upload.name)} is not a UTF-8 text file; the song is unchanged.")
        return
    except ValueError as err:
        st.session_state[SONG_FILE_NOTE] = ("error", f"{escape_markdown(upload.name)}: {escape_markdown(err)}; the song is unchanged.")
        return
    set_song(song, source=upload.name)
    note = f"Opened {escape_markdown(upload.name)}."
    if filled and len(filled) < len(FEATURE_NAMES):
        note += " Not in the file, so set to the typical track's value: " + ", ".join(filled) + "."
    st.session_state[SONG_FILE_NOTE] = ("success", note)


left, right = st.columns([3, 2], gap="large")
with left:
    score_line = st.container(key="score_line")  # phones: the score stays in view above the controls
    pick, reset = st.columns([3, 1], vertical_alignment="bottom")
    pick.selectbox("Start from a demo track", [""] + demo_tracks()["title"].tolist(), key="demo_pick",
                   on_change=_load_demo, format_func=lambda t: t or "— choose —")
    reset.button("Reset to typical", on_click=set_song, args=(default_song(), None), width="stretch", key="reset_song")
    audio_panel()
    song = song_controls(marks=audio_marks())

prediction = predictor.predict_song(song)
remember_song(f"{st.session_state.get('song_source') or 'Your song'} (scored {prediction.score:.1f})", song)
has_fit = prediction.tiktok_fit is not None  # None: the bundle has no TikTok-fit model
# One line per phone screen: the score, its interval and the TikTok fit.
parts = [f"**{prediction.score:.1f}** predicted popularity",
         f"{predictor.interval_level:.0%} interval {prediction.low:.0f}–{prediction.high:.0f}"]
if has_fit:
    parts.append(f"TikTok fit **{fit_text(prediction.tiktok_fit)}**")
if prediction.out_of_distribution:
    parts.append(":orange[unusual song: a guess]")
score_line.markdown(" · ".join(parts))

with right:
    with st.container(key="score_panel"):
        # the score's long label needs most of the width, or it is cut short ("Predicted popularity (0–1…")
        score_col, fit_col = st.columns([5, 2], gap="small") if has_fit else (st.container(), None)
        score_col.metric("Predicted popularity (0–100)", f"{prediction.score:.1f}")
        if has_fit:
            fit_col.metric("TikTok fit", fit_text(prediction.tiktok_fit))
        st.markdown(f"**{predictor.interval_level:.0%} interval: {prediction.low:.0f} – {prediction.high:.0f}** · "
                    f"higher than **{prediction.percentile:.0f}%** of real TikTok tracks as this model scores them")
        if has_fit:
            st.markdown(f"**TikTok fit {fit_text(prediction.tiktok_fit)}**: {FIT_MEANING}; higher than "
                        f"**{prediction.fit_percentile:.0f}%** of catalogue tracks.")
        chart(score_figure(prediction, predictor), "score_chart")
        if prediction.out_of_distribution:
            unusual = ", ".join(prediction.unusual) if prediction.unusual else "the combination of values"
            st.warning(f"Unlike the real tracks the model learned from ({unusual}): treat this score as a guess.")
        st.caption("The interval is where about 80% of songs like this one really land: the model is honest "
                   "about how little 12 audio numbers can say.")

    st.markdown("**Copy link to this song** (it opens these values on any page)")
    st.code(song_link(st.context.url or "", song), language=None, wrap_lines=True)
    st.download_button("Download this song (JSON)", song_to_json(song), "song.json", mime="application/json",
                       on_click="ignore", key="song_download", width="stretch",
                       help="The file `python -m virality explain --song song.json` reads.")
    st.file_uploader("Open a song file (JSON, as downloaded here or written for `--song`)", type=["json"],
                     key=SONG_FILE_KEY, on_change=_open_song_file)
    if note := st.session_state.pop(SONG_FILE_NOTE, None):
        (st.success if note[0] == "success" else st.error)(note[1])
