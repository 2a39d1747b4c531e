"""Predict page: "Start from an audio file" — measured tempo, key, mode, loudness and length
fill the controls; the other seven stay as the user set them."""

from __future__ import annotations

import hashlib

import streamlit as st

from ui.state import current_song, set_song
from virality.audio.analysis import NOT_MEASURED, AudioAnalysis, analyse, describe_measurement
from virality.audio.decode import ANALYSE_SECONDS, AudioError
from virality.features import BY_NAME
from virality.markdown import escape_markdown

UPLOAD_KEY = "audio_upload"
RESULT_KEY = "audio_result"
AUDIO_TYPES = ["wav", "flac", "ogg", "mp3"]


def analyse_upload(data: bytes) -> tuple[AudioAnalysis | None, str | None]:
    """``(analysis, None)`` or ``(None, error message)``. Not in ``st.cache_data``: that cache is
    shared by every session and outlives them; the result lives in this session's state instead
    (``RESULT_KEY``, keyed by the file's SHA-256), so the same file is not analysed twice here."""
    try:
        return analyse(data), None
    except AudioError as err:
        return None, str(err)
    except Exception as err:  # noqa: BLE001 — keep the page alive; say what happened in one line
        return None, f"unexpected problem while analysing ({type(err).__name__}: {err})"


def apply_audio(data: bytes, name: str) -> dict:
    """Analyse ``data``; on success put the measured values into the current song (the other
    characteristics keep their values). Returns the result kept in ``st.session_state``:
    ``{"digest", "name", "analysis", "error"}``. On error the song is left untouched."""
    digest = hashlib.sha256(data).hexdigest()
    analysis, error = analyse_upload(data)
    result = {"digest": digest, "name": name, "analysis": analysis, "error": error, "source": f"audio: {name}"}
    if analysis is not None:
        set_song(analysis.song(current_song()), source=result["source"])
    st.session_state[RESULT_KEY] = result
    return result


def audio_marks() -> dict[str, tuple[float, str]]:
    """``{name: (measured value, "measured from audio · confidence c")}`` while the current song
    still comes from the analysed file; ``song_controls`` shows the mark under a control as long
    as it still shows the measured value."""
    result = st.session_state.get(RESULT_KEY)
    if not result or result["analysis"] is None or st.session_state.get("song_source") != result["source"]:
        return {}
    marks = {}
    for name, m in result["analysis"].values.items():
        how = "exact" if name in ("duration", "loudness") else f"confidence {m.confidence:.2f}"
        marks[name] = (m.value, f"🎧 measured from audio · {how}")
    return marks


def audio_panel() -> None:
    """The upload box with playback and the measurement summary. Call before ``song_controls()``."""
    result = st.session_state.get(RESULT_KEY)
    with st.expander("Start from an audio file", expanded=result is not None):
        upload = st.file_uploader(f"WAV, FLAC, OGG or MP3 (the first {ANALYSE_SECONDS / 60:.0f} minutes are "
                                  "analysed)", type=AUDIO_TYPES, key=UPLOAD_KEY)
        if upload is None:
            st.caption("Tempo, key, mode, loudness and length are measured from the file; the other seven "
                       "characteristics are Spotify's own model outputs and stay yours to set.")
            return
        data = upload.getvalue()
        st.audio(data, format=upload.type or "audio/wav")
        if result is None or result["digest"] != hashlib.sha256(data).hexdigest():
            with st.spinner(f"Analysing {escape_markdown(upload.name)}…"):
                result = apply_audio(data, upload.name)
        _show_result(result)


def _show_result(result: dict) -> None:
    if result["error"]:
        st.error(f"Could not analyse {escape_markdown(result['name'])}: {escape_markdown(result['error'])}. "
                 "The controls keep their values.")
        return
    analysis: AudioAnalysis = result["analysis"]
    lines = [f"- **{BY_NAME[name].label}**: {describe_measurement(name, m)}" for name, m in analysis.values.items()]
    st.markdown(f"Measured from **{escape_markdown(result['name'])}**:\n" + "\n".join(lines))
    for note in analysis.notes:
        st.info(f"Note: {escape_markdown(note)}.")
    st.caption("Confidence: for tempo, how clearly the beat repeats (0–1; the half or double tempo may fit as "
               "well); for key and mode, how far the best key profile beats the runner-up (0 = a tie). "
               "Loudness is ITU-R BS.1770 integrated loudness (LUFS); Spotify's dB figure comes from an "
               "unpublished method, and the two could not be compared here. Not measured, still yours to set: "
               + ", ".join(BY_NAME[n].label.lower() for n in NOT_MEASURED) + ".")
