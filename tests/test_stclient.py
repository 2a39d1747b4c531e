"""The load benchmark's client (``benchmarks/stclient.py``) against a real ``streamlit run app.py``:
two real sessions over Streamlit's websocket protocol, each with its own song and upload."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.load import SESSION_TTL
from benchmarks.stclient import Session
from tests.browser import OUTPUT, streamlit_server
from ui.sessions import COLLECT_AFTER
from virality.data.demo import DEMO_CSV
from virality.features import default_song

pytestmark = pytest.mark.slow


async def two_visitors(url: str) -> dict:
    async with Session(url) as alice, Session(url) as bob:
        first = await alice.rerun()
        await bob.rerun()
        slider = first.widget("slider", "Danceability").id
        alice.set_slider(slider, 0.2)
        alice_moved = await alice.rerun()
        bob_again = await bob.rerun()
        batch = await alice.rerun(page="Batch")
        await alice.upload(batch.widget("file_uploader", "A CSV").id, "alice-tracks.csv", DEMO_CSV.read_bytes())
        alice_scored = await alice.rerun()
        bob_batch = await bob.rerun(page="Batch")
        return {"alice": alice_moved.metric("Predicted popularity"), "bob": bob_again.metric("Predicted popularity"),
                "alice_batch": alice_scored.texts(), "bob_batch": bob_batch.texts(),
                "sessions": {alice.session_id, bob.session_id}}


def test_two_real_sessions_keep_their_own_song_and_upload(bundled):
    with streamlit_server() as url:
        seen = asyncio.run(two_visitors(url))
    assert len(seen["sessions"]) == 2
    assert seen["alice"] == f"{bundled.predict_song(dict(default_song(), danceability=0.2)).score:.1f}"
    assert seen["bob"] == f"{bundled.predict_song(default_song()).score:.1f}"
    assert any("alice\\-tracks\\.csv" in text and "scored 8 of 8" in text for text in seen["alice_batch"])
    assert not any("alice" in text for text in seen["bob_batch"])
    assert any(text.startswith("Upload a file") for text in seen["bob_batch"])


def test_the_load_benchmark_runs_a_tiny_round():
    from benchmarks.load import ExpectedScores, one_round, upload_bytes

    result = asyncio.run(one_round(2, seconds=3.0, data=upload_bytes(200), n_rows=200, expected=ExpectedScores()))
    assert result["errors"] == 0, result["error_examples"]
    assert result["moving"]["n"] >= 2 and result["upload_s"] is not None
    assert result["rss_mb"]["start"] > 0 and result["server_cpu_s_per_move"] > 0
    assert result["servers"] == 1 and len(result["per_server"]) == 1


def test_the_load_benchmark_sends_visitor_i_to_server_i_mod_k():
    """Three visitors on two processes: 0 and 2 on the first (0 uploads there), 1 on the second;
    each process does its own visitors' work and the round's RSS is the two processes' sum."""
    from benchmarks.load import ExpectedScores, markdown, one_round, upload_bytes

    result = asyncio.run(one_round(3, seconds=3.0, data=upload_bytes(200), n_rows=200, expected=ExpectedScores(),
                                   k=2))
    first, second = result["per_server"]
    assert result["errors"] == 0, result["error_examples"]
    assert result["servers"] == 2 and first["url"] != second["url"]
    assert (first["visitors"], second["visitors"]) == (2, 1)
    assert first["server_cpu_s_per_move"] > 0 and second["server_cpu_s_per_move"] > 0
    assert result["moving"]["n"] == first["moving"]["n"] + second["moving"]["n"] and second["moving"]["n"] >= 2
    assert result["rss_mb"]["start"] == pytest.approx(first["rss_mb"]["start"] + second["rss_mb"]["start"], abs=0.2)
    assert result["rss_mb"]["start"] > 1.5 * first["rss_mb"]["start"]
    assert "| this branch | 3 | 2 |" in markdown([result], "python -m benchmarks.load", 3.0, 200)


async def upload_and_leave(url: str, pid: int, blob: bytes, visitors: int, ttl: float) -> list[float]:
    """``visitors`` sessions one after another: each uploads ``blob`` as an audio file on Predict
    (played back with ``st.audio``, then refused) and closes; the server's RSS (MB) once each is gone."""
    from benchmarks.load import rss_mb

    after = []
    for i in range(visitors):
        async with Session(url) as visitor:
            predict = await visitor.rerun()
            await visitor.upload(predict.widget("file_uploader", "WAV").id, f"noise{i}.wav", blob, "audio/wav")
            assert any("Could not analyse" in text for text in (await visitor.rerun()).texts())
        await asyncio.sleep(ttl + 1)
        async with Session(url) as later:  # Streamlit drops expired sessions when another one leaves
            await later.rerun()
        await asyncio.sleep(COLLECT_AFTER + 1.5)
        after.append(rss_mb(pid))
    return after


def test_a_closed_sessions_upload_leaves_the_server_memory():
    """Three visitors in turn upload 40 MB and close their tab: before ``ui.sessions`` the server
    kept each one's upload and its playback copy for good (+80 MB a visitor); now its memory stays flat."""
    import os

    from benchmarks.load import server

    with server(OUTPUT / "streamlit-uploads.log") as (url, pid):
        first, *later = asyncio.run(upload_and_leave(url, pid, os.urandom(40_000_000), 3, SESSION_TTL))
    assert max(later) - first < 20, (first, later)
