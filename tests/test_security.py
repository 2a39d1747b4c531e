"""What is trusted, checked (see SECURITY.md).

Nothing a user gives is unpickled; the only unpickling is of the bundle in ``artifacts/``,
and only bytes whose SHA-256 matches ``metadata.json``; weights load with
``weights_only=True``; the Streamlit server keeps XSRF protection and an upload limit.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import torch

from virality.model import bundle
from virality.model.bundle import META_FILE, MODEL_FILE, PREP_FILE, BundleError, load_bundle

ROOT = Path(__file__).resolve().parent.parent
APP_SOURCES = [ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py")), *sorted((ROOT / "pages").glob("*.py")),
               *sorted((ROOT / "virality").rglob("*.py"))]
NEVER = {"pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "dill.loads", "cloudpickle.load",
         "cloudpickle.loads", "marshal.load", "marshal.loads", "shelve.open", "pd.read_pickle", "pandas.read_pickle",
         "read_pickle", "yaml.load", "yaml.unsafe_load", "eval", "exec"}
BUNDLE_ONLY = {"joblib.load"}


def call_name(node: ast.Call) -> str:
    return ast.unparse(node.func)


def calls(path: Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.Call)]


def keyword(node: ast.Call, name: str):
    for item in node.keywords:
        if item.arg == name:
            return ast.literal_eval(item.value) if isinstance(item.value, ast.Constant) else "not a constant"
    return None


def test_the_scan_sees_the_app_sources():
    assert ROOT / "app.py" in APP_SOURCES and ROOT / "virality" / "model" / "bundle.py" in APP_SOURCES
    assert any(call_name(c) == "joblib.load" for c in calls(ROOT / "virality" / "model" / "bundle.py"))


@pytest.mark.parametrize("path", APP_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_unpickles_or_evaluates_anything_else(path):
    for node in calls(path):
        name = call_name(node)
        where = f"{path.relative_to(ROOT)}:{node.lineno} {name}"
        assert name not in NEVER, where
        if name in BUNDLE_ONLY:
            assert path == ROOT / "virality" / "model" / "bundle.py", f"{where}: joblib only loads the checked bundle"
        if name == "torch.load":
            assert keyword(node, "weights_only") is True, f"{where} without weights_only=True"
        if name.endswith("np.load") or name.endswith("numpy.load"):
            assert keyword(node, "allow_pickle") in (None, False), where


@pytest.fixture
def unpickle_calls(monkeypatch) -> list[str]:
    seen = []
    real_joblib, real_torch = bundle.joblib.load, bundle.torch.load
    monkeypatch.setattr(bundle.joblib, "load", lambda *a, **k: seen.append("joblib") or real_joblib(*a, **k))
    monkeypatch.setattr(bundle.torch, "load", lambda *a, **k: seen.append("torch") or real_torch(*a, **k))
    return seen


@pytest.mark.parametrize("name", [PREP_FILE, MODEL_FILE])
def test_a_tampered_file_is_never_unpickled(bundle_copy, unpickle_calls, name):
    with (bundle_copy / name).open("ab") as handle:
        handle.write(b"\x80")
    with pytest.raises(BundleError, match=f"{name} does not match the SHA-256"):
        load_bundle(bundle_copy)
    assert unpickle_calls == []


def test_metadata_without_hashes_is_refused(bundle_copy, unpickle_calls):
    meta = json.loads((bundle_copy / META_FILE).read_text())
    del meta["files"]
    (bundle_copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="no SHA-256"):
        load_bundle(bundle_copy)
    assert unpickle_calls == []


class _RunsCodeWhenUnpickled:
    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_weights_that_carry_code_are_refused_even_with_matching_hash(bundle_copy, tmp_path):
    """``weights_only=True``: an attacker who rewrites model.pt *and* its hash still runs nothing."""
    payload = _RunsCodeWhenUnpickled()
    payload.marker = tmp_path / "code-ran"
    torch.save({"weights": payload}, bundle_copy / MODEL_FILE)
    meta = json.loads((bundle_copy / META_FILE).read_text())
    meta["files"][MODEL_FILE] = hashlib.sha256((bundle_copy / MODEL_FILE).read_bytes()).hexdigest()
    (bundle_copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="holds more than tensors"):
        load_bundle(bundle_copy)
    assert not payload.marker.exists()


def test_the_committed_bundle_matches_its_hashes():
    meta = json.loads((bundle.ARTIFACTS_DIR / META_FILE).read_text())
    for name in (MODEL_FILE, PREP_FILE):
        assert hashlib.sha256((bundle.ARTIFACTS_DIR / name).read_bytes()).hexdigest() == meta["files"][name]


def server_config() -> dict:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))


def test_xsrf_protection_stays_on_and_cors_is_not_disabled():
    server = server_config()["server"]
    assert server.get("enableXsrfProtection") is True
    assert server.get("enableCORS", True) is True  # XSRF protection needs CORS on


def test_uploads_have_a_size_limit():
    limit = server_config()["server"].get("maxUploadSize")
    # MB; Streamlit's default is 200. 120 fits 10 minutes of 16-bit stereo WAV (106 MB).
    assert isinstance(limit, int) and 1 <= limit <= 120


def test_no_usage_statistics_leave_the_machine():
    assert server_config()["browser"]["gatherUsageStats"] is False


# --- user text is shown as text (issue 14, point 5) -------------------------------------------

HOSTILE_TEXTS = ["![px](http://127.0.0.1:9/p.png)", "[click](javascript:alert(1))", "<img src=x onerror=alert(1)>",
                 "**bold** _it_ `code` ~~gone~~", "$x^2$ and $$y$$", ":red[colour] :material/home: :smile:",
                 "# heading", "1. list", "- item", "> quote", "| a | b |", "&lt;script&gt; &amp;", "a\\", "back\\slash",
                 "Café — Déjà vu", "tab\there"]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_escaped_text_reads_back_as_itself(text):
    from tests.apptest import as_read
    from virality.markdown import escape_markdown

    assert as_read(escape_markdown(text)) == text


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_no_markdown_character_is_left_bare(text):
    """Read left to right, every ASCII punctuation character of the output is an escaped one."""
    from virality.markdown import escape_markdown

    out, i = escape_markdown(text), 0
    while i < len(out):
        if out[i] == "\\":
            assert i + 1 < len(out) and not out[i + 1].isalnum() and out[i + 1].isascii(), out
            i += 2
            continue
        assert out[i].isalnum() or not out[i].isascii() or out[i] in " \t", f"bare {out[i]!r} in {out!r}"
        i += 1


def test_line_breaks_become_spaces_so_a_name_cannot_start_a_block():
    from virality.markdown import escape_markdown

    assert escape_markdown("song\n# big\r\n\r\n![x](y)\u2028end") == "song \\# big \\!\\[x\\]\\(y\\) end"
    assert escape_markdown(3.5) == "3\\.5" and escape_markdown(None) == "None"


# --- one session's song, uploads and results stay in it (issue 14, point 4) -------------------

def cached_functions() -> list[tuple[Path, ast.FunctionDef, ast.Call]]:
    """Every ``@st.cache_data(...)`` / ``@st.cache_resource(...)`` function in ui/ and pages/."""
    found = []
    for path in [*sorted((ROOT / "ui").glob("*.py")), *sorted((ROOT / "pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                found += [(path, node, d) for d in node.decorator_list
                          if isinstance(d, ast.Call) and call_name(d) in ("st.cache_data", "st.cache_resource")]
    return found


USER_GIVEN = {"data", "name", "label", "title", "upload", "file", "source", "_data"}


def test_shared_caches_are_bounded_and_never_keyed_by_what_a_user_uploaded_or_named():
    """``st.cache_data`` is one store for every session that outlives them: each entry set is
    bounded, and no cached function takes file bytes, a file name or a label (those stay in the
    session's own ``st.session_state``)."""
    functions = cached_functions()
    assert len(functions) >= 7  # the scan sees the app's caches
    for path, function, decorator in functions:
        where = f"{path.relative_to(ROOT)}:{function.lineno} {function.name}"
        arguments = [a.arg for a in function.args.args]
        assert not USER_GIVEN & set(arguments), f"{where} is keyed by user-given {USER_GIVEN & set(arguments)}"
        assert not any(a.annotation is not None and ast.unparse(a.annotation) == "bytes" for a in function.args.args), where
        if call_name(decorator) == "st.cache_resource":
            assert arguments == [], f"{where}: a shared resource takes no per-user argument"
            continue
        assert isinstance(keyword(decorator, "max_entries"), int), f"{where} has no max_entries"
        if arguments:  # keyed by a song: entries also expire
            assert any(k.arg == "ttl" for k in decorator.keywords), f"{where} has no ttl"


def wav_upload(name: str) -> tuple[str, bytes, str]:
    from tests.audio_signals import song, wav_bytes

    return name, wav_bytes(song(bpm=120, tonic=0, major=True, seconds=20.0)), "audio/wav"


def csv_upload(name: str, title: str) -> tuple[str, bytes, str]:
    from virality.data.demo import DEMO_CSV

    frame = pd.read_csv(DEMO_CSV, dtype=str)
    frame.loc[0, "title"] = title
    return name, frame.to_csv(index=False).encode(), "text/csv"


def everything_shown(at) -> str:
    """Every text element and label on the page as a reader sees it, joined."""
    from tests.apptest import as_read

    parts = []
    for kind in ("markdown", "caption", "info", "warning", "success", "error", "title", "metric"):
        parts += [str(getattr(e, "label", "")) + " " + str(e.value) for e in at.get(kind)]
    return as_read("\n".join(parts))


def test_two_sessions_never_see_each_others_song_upload_or_results(bundled, monkeypatch):
    """Alice moves a slider, analyses an audio file and scores a CSV; Bob, on the same server
    process (same caches), sees none of it on any page and in none of his state; his upload of the
    very same bytes is analysed and scored again, not fetched from hers."""
    import ui.audio
    from tests.apptest import open_app
    from virality.batch import ranking
    from virality.features import default_song

    analysed, scored = [], []
    real_analyse, real_score = ui.audio.analyse, ranking.score_upload
    monkeypatch.setattr(ui.audio, "analyse", lambda data: analysed.append(len(data)) or real_analyse(data))
    monkeypatch.setattr(ranking, "score_upload", lambda data, name, *a, **k: scored.append(name) or
                        real_score(data, name, *a, **k))
    audio, table = wav_upload("alice-private-take.wav"), csv_upload("alice-tracks.csv", "Alice Unreleased")
    alice, bob = open_app(), open_app()
    alice.slider(key="w_danceability").set_value(0.2).run()
    alice.file_uploader(key="audio_upload").set_value(audio).run()
    assert not alice.exception and "alice-private-take" in everything_shown(alice)
    alice.slider(key="w_energy").set_value(0.3).run()  # the measured song joins her history
    alice.switch_page("pages/batch.py").run()
    alice.file_uploader(key="batch_upload").set_value(table).run()
    assert not alice.exception and any("Alice Unreleased" in o for box in alice.selectbox
                                                   if str(box.key).startswith("batch_a_") for o in box.options)
    alice.switch_page("pages/explain.py").run()
    assert any("alice-private-take" in option for option in alice.selectbox(key="explain_baseline").options)

    bob.run()
    assert float(bob.metric[0].value) == round(bundled.predict_song(default_song()).score, 1)
    for page in ("pages/predict.py", "pages/explain.py", "pages/what_if.py", "pages/batch.py"):
        bob.switch_page(page).run()
        assert not bob.exception
        seen = everything_shown(bob) + " ".join(o for box in bob.selectbox for o in box.options)
        assert "alice" not in seen.lower(), page
        assert "alice" not in repr(bob.session_state.to_dict()).lower(), page
    assert bob.session_state["song"] == default_song()

    bob.file_uploader(key="batch_upload").set_value(table).run()
    bob.switch_page("pages/predict.py").run()
    bob.file_uploader(key="audio_upload").set_value(audio).run()
    assert not bob.exception
    assert scored == ["alice-tracks.csv", "alice-tracks.csv"] and len(analysed) == 2


HOSTILE_NAME = "![px](http:\\\\127.0.0.1:9\\p.png)<img src=x>"  # a legal file name; the browser reads \ as /
HOSTILE_HEADER = "![px](http://127.0.0.1:9/h.png)"


def markdown_sources(at) -> list[str]:
    """The Markdown source of every element the browser renders as Markdown (texts and labels)."""
    sources = []
    for kind in ("markdown", "caption", "info", "warning", "success", "error", "title", "subheader"):
        sources += [str(e.value) for e in at.get(kind)]
    sources += [m.label for m in at.metric]
    sources += [w.label for kind in ("selectbox", "slider", "text_input", "radio", "checkbox", "toggle")
                for w in at.get(kind)]
    return sources


def assert_no_raw_user_text(at, *texts: str) -> None:
    """No Markdown source holds the texts, an image or a tag as they were given (only escaped)."""
    for source in markdown_sources(at):
        assert not any(text in source for text in texts), source
        assert "![px](" not in source and not re.search(r"(?<!\\)<img", source), source


def test_every_page_shows_a_hostile_file_name_header_and_title_as_text():
    from tests.apptest import as_read, open_app

    at = open_app()
    at.file_uploader(key="audio_upload").set_value(wav_upload(HOSTILE_NAME + ".wav")).run()
    assert not at.exception
    assert any(f"Measured from **{HOSTILE_NAME}.wav**" in as_read(m.value) for m in at.markdown)
    assert_no_raw_user_text(at, HOSTILE_NAME)
    at.slider(key="w_energy").set_value(0.3).run()  # the measured song joins the history

    at.switch_page("pages/what_if.py").run()
    assert any(HOSTILE_NAME in as_read(m.value) for m in at.markdown)  # "Current song (audio: …)"
    assert_no_raw_user_text(at, HOSTILE_NAME)

    at.switch_page("pages/explain.py").run()
    hostile = next(o for o in at.selectbox(key="explain_baseline").options if HOSTILE_NAME in o)
    at.selectbox(key="explain_baseline").select(hostile).run()
    assert not at.exception and any(as_read(m.label) == hostile for m in at.metric)
    assert_no_raw_user_text(at, HOSTILE_NAME)

    frame = pd.read_csv(ROOT / "examples" / "demo_tracks.csv", dtype=str)
    frame[HOSTILE_HEADER] = "x"
    frame.loc[0, "title"] = HOSTILE_NAME
    at.switch_page("pages/batch.py").run()
    at.file_uploader(key="batch_upload").set_value((HOSTILE_NAME + ".csv", frame.to_csv(index=False).encode(),
                                                   "text/csv")).run()
    assert not at.exception
    assert any(f"{HOSTILE_NAME}.csv" in as_read(s.value) for s in at.success)
    assert any(HOSTILE_HEADER in as_read(c.value) for c in at.caption)  # "Kept as they are: …"
    assert_no_raw_user_text(at, HOSTILE_NAME, HOSTILE_HEADER)
    at.file_uploader(key="batch_upload").set_value((HOSTILE_NAME + ".csv", b"\x00\x01binary", "text/csv")).run()
    assert at.error and all(HOSTILE_NAME not in e.value for e in at.error)


def test_track_names_are_html_escaped_in_charts(bundled):
    from virality.batch.plots import compare_figure, ranked_figure
    from virality.batch.ranking import compare_tracks, score_batch
    from virality.data.reading import read_csv_file

    frame = read_csv_file(ROOT / "examples" / "demo_tracks.csv")
    frame.loc[frame.index[0], "title"] = '<a href="http://127.0.0.1:9/">t</a>'  # index: spreadsheet rows
    result = score_batch(frame, bundled)
    labels = ranked_figure(result.table, result.labels, bundled).data[0].y
    assert any("&lt;a href=&quot;http://127.0.0.1:9/&quot;&gt;t&lt;/a&gt;" in label for label in labels)
    assert not any("<a" in label for label in labels)
    row = result.labels.index[result.labels.str.contains("href")][0]
    other = next(i for i in result.labels.index if i != row)
    names = [trace.name for trace in compare_figure(compare_tracks(result, row, other)[1]).data]
    assert any(name.startswith("&lt;a href=") for name in names) and not any("<a" in name for name in names)
