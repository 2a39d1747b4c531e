"""Predict: move the sliders, watch the popularity score (the home page of `streamlit run app.py`)."""

import streamlit as st

from ui.audio import audio_marks, audio_panel
from ui.controls import song_controls
from ui.layout import page_header
from ui.state import get_predictor, remember_song, set_song
from virality.data.demo import demo_song, demo_tracks
from virality.features import default_song
from virality.model.plots import score_figure

page_header("Predict", "Will this song take off on TikTok? Set its characteristics and watch the score.")
predictor = get_predictor()


def _load_demo() -> None:
    title = st.session_state["demo_pick"]
    if title:
        set_song(demo_song(title), source=title)


left, right = st.columns([3, 2], gap="large")
with left:
    pick, reset = st.columns([3, 1], vertical_alignment="bottom")
    pick.selectbox("Start from a demo track", [""] + demo_tracks()["title"].tolist(), key="demo_pick",
                   on_change=_load_demo, format_func=lambda t: t or "— choose —")
    reset.button("Reset to typical", on_click=set_song, args=(default_song(), None), width="stretch", key="reset_song")
    audio_panel()
    song = song_controls(marks=audio_marks())

prediction = predictor.predict_song(song)
remember_song(f"{st.session_state.get('song_source') or 'Your song'} (scored {prediction.score:.1f})", song)
with right:
    st.metric("Predicted popularity (0–100)", f"{prediction.score:.1f}")
    st.markdown(f"**{predictor.interval_level:.0%} interval: {prediction.low:.0f} – {prediction.high:.0f}** · "
                f"higher than **{prediction.percentile:.0f}%** of real TikTok tracks as this model scores them")
    st.plotly_chart(score_figure(prediction, predictor), width="stretch", key="score_chart",
                    config={"displayModeBar": False})
    if prediction.out_of_distribution:
        unusual = ", ".join(prediction.unusual) if prediction.unusual else "the combination of values"
        st.warning(f"Unlike the real tracks the model learned from ({unusual}): treat this score as a guess.")
    st.caption("The interval is where about 80% of songs like this one really land: the model is honest "
               "about how little 12 audio numbers can say.")
