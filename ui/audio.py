"""Predict page: "Start from an audio file" — the measured tempo, key, mode and length fill the
controls; what cannot honestly be applied (loudness in LUFS, an uncertain key, mode or tempo,
the length of a short clip) is shown beside its control and offered, not applied; the other
seven stay as the user set them."""

from __future__ import annotations

import hashlib

import streamlit as st

from ui.controls import Mark, shows_value
from ui.state import current_song, set_song
from virality.audio.analysis import (
    KEY_MIN_FIT,
    KEY_MIN_MARGIN,
    NOT_MEASURED,
    TEMPO_MIN_CLARITY,
    AudioAnalysis,
    analyse,
    describe_measurement,
)
from virality.audio.decode import ANALYSE_SECONDS, MAX_CHANNELS, MAX_SAMPLE_RATE, AudioError
from virality.features import BY_NAME

UPLOAD_KEY = "audio_upload"
RESULT_KEY = "audio_result"
AUDIO_TYPES = ["wav", "flac", "ogg", "mp3"]
MARK = "🎧"


@st.cache_data(show_spinner=False, max_entries=16)
def analyse_cached(digest: str, _data: bytes) -> tuple[AudioAnalysis | None, str | None]:
    """``(analysis, None)`` or ``(None, error message)``, cached per file content (SHA-256 ``digest``)."""
    try:
        return analyse(_data), None
    except AudioError as err:
        return None, str(err)
    except Exception as err:  # noqa: BLE001 — keep the page alive; say what happened in one line
        return None, f"unexpected problem while analysing ({type(err).__name__}: {str(err)[:200]})"


def apply_audio(data: bytes, name: str) -> dict:
    """Analyse ``data``; on success put the measured values that are not held back into the
    current song (the other characteristics keep their values). Returns the result kept in
    ``st.session_state``: ``{"digest", "name", "analysis", "error", "source"}``. On error
    the song is left untouched."""
    digest = hashlib.sha256(data).hexdigest()
    analysis, error = analyse_cached(digest, data)
    result = {"digest": digest, "name": name, "analysis": analysis, "error": error, "source": f"audio: {name}"}
    if analysis is not None:
        set_song(analysis.song(current_song()), source=result["source"])
    st.session_state[RESULT_KEY] = result
    return result


def use_measured(name: str) -> None:
    """Button callback: put the measured value of ``name`` into the current song."""
    result = st.session_state[RESULT_KEY]
    set_song(result["analysis"].song(current_song(), names=[name]), source=result["source"])


def _current_analysis() -> AudioAnalysis | None:
    """The analysis of the upload while the current song still comes from it."""
    result = st.session_state.get(RESULT_KEY)
    if not result or result["analysis"] is None or st.session_state.get("song_source") != result["source"]:
        return None
    return result["analysis"]


def audio_marks() -> dict[str, Mark]:
    """Captions for ``song_controls``: "measured from audio" under a control while it shows the
    measured value; under one whose value was held back (``AudioAnalysis.held_back``), the
    measured value and why it was not applied, while it shows something else."""
    analysis = _current_analysis()
    if analysis is None:
        return {}
    held_back = analysis.held_back()
    marks = {}
    for name, m in analysis.values.items():
        how = "exact" if name in ("duration", "loudness") else f"confidence {m.confidence:.2f}"
        unit = " · LUFS, not Spotify's dB" if name == "loudness" else ""
        otherwise = (f"{MARK} measured {_measured_text(name, m.value)} · not applied ({_short_reason(name)}; "
                     "see the audio box)" if name in held_back else "")
        marks[name] = Mark(m.value, f"{MARK} measured from audio · {how}{unit}", otherwise)
    return marks


def _short_reason(name: str) -> str:
    if name == "loudness":
        return "LUFS, not Spotify's dB"
    if name == "duration":
        return "is the clip the whole song?"
    return "uncertain"


def _measured_text(name: str, value: float) -> str:
    """The measured value in the unit the user reads (loudness in LUFS, not the slider's dB)."""
    return f"{value:.1f} LUFS" if name == "loudness" else BY_NAME[name].format(value)


def audio_panel() -> None:
    """The upload box with the measurement summary and playback. Call before ``song_controls()``."""
    result = st.session_state.get(RESULT_KEY)
    with st.expander("Start from an audio file", expanded=result is not None):
        upload = st.file_uploader(f"WAV, FLAC, OGG or MP3 (the first {ANALYSE_SECONDS / 60:.0f} minutes are "
                                  f"analysed; up to {MAX_SAMPLE_RATE // 1000} kHz and {MAX_CHANNELS} channels)",
                                  type=AUDIO_TYPES, key=UPLOAD_KEY)
        if upload is None:
            st.caption("Tempo, key, mode, loudness and length are measured from the file; the other seven "
                       "characteristics are Spotify's own model outputs and stay yours to set.")
            return
        data = upload.getvalue()
        if result is None or result["digest"] != hashlib.sha256(data).hexdigest():
            with st.spinner(f"Analysing {upload.name}…"):
                result = apply_audio(data, upload.name)
        if result["error"]:  # no player for a file that could not be decoded
            st.error(f"Could not analyse {result['name']}: {result['error']}. The controls keep their values.")
            return
        st.audio(data, format=upload.type or "audio/wav")
        _show_result(result)


def _show_result(result: dict) -> None:
    analysis: AudioAnalysis = result["analysis"]
    held_back = analysis.held_back()
    lines = [f"- **{BY_NAME[name].label}**: {describe_measurement(name, m)}"
             + (" — *not applied*" if name in held_back else "") for name, m in analysis.values.items()]
    st.markdown(f"Measured from **{result['name']}**:\n" + "\n".join(lines))
    for note in analysis.notes:
        st.info(f"Note: {note}.")
    _offer_held_back(analysis, held_back)
    st.caption("Confidence: for tempo, how clearly the beat repeats (0–1; the half or double tempo may fit as "
               "well); for key and mode, how far the best key profile beats the runner-up (0 = a tie). "
               f"A tempo clearer than {TEMPO_MIN_CLARITY} and a key and mode that fit a key profile (correlation "
               f"{KEY_MIN_FIT} or more) with a margin of {KEY_MIN_MARGIN} or more are applied; others are marked "
               "uncertain and wait for you. Not measured, still yours to set: " + ", ".join(BY_NAME[n].label.lower() for n in NOT_MEASURED) + ".")


def _offer_held_back(analysis: AudioAnalysis, held_back: dict[str, str]) -> None:
    """One button per held-back value that the controls do not already show."""
    song = current_song()
    for name, why in held_back.items():
        value = analysis.values[name].value
        if shows_value(name, song[name], value):
            continue
        if name == "duration":
            st.info(f"This file is {BY_NAME['duration'].format(value)} long. Is that the whole song? The length "
                    f"control keeps {BY_NAME['duration'].format(song['duration'])} until you say so.")
            label = f"Use {BY_NAME['duration'].format(value)} as the song's length"
        elif name == "loudness":
            st.info(f"Measured loudness: {value:.1f} LUFS. The Loudness control is Spotify's dB, a different scale "
                    f"whose relation to LUFS is unknown here, so it keeps {song['loudness']:.1f} dB.")
            label = f"Use the measured loudness ({value:.1f} LUFS) as the loudness"
        else:
            label = f"Use the uncertain {BY_NAME[name].label.lower()} ({BY_NAME[name].format(value)}) anyway"
            st.caption(f"{BY_NAME[name].label} not applied: {why}.")
        st.button(label, key=f"use_audio_{name}", on_click=use_measured, args=(name,))
