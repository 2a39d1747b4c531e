"""The command line through its real entry point: one smoke test per command starts a new
``python -m virality`` process, and (but for train) checks it prints exactly what the
in-process ``tests.cli.run`` prints, the helper every other CLI test uses. Also ``download``
in-process with gdown's fetch replaced (nothing is downloaded at test time)."""

from __future__ import annotations

import json
import shutil

import gdown
import pytest

from tests.audio_signals import song, wav_bytes
from tests.cli import run, run_process
from tests.conftest import TINY_CONFIG
from virality.data.demo import DEMO_CSV
from virality.data.tracks import load_tracks
from virality.features import FEATURE_NAMES, default_song
from virality.model.bundle import META_FILE
from virality.model.prediction import load_predictor

COMMANDS = ("train", "score", "explain", "whatif", "features", "download")
# what the score command must not import (it pays for torch and pandas only)
HEAVY = ("sklearn", "scipy", "captum", "librosa", "plotly", "streamlit", "lightgbm", "virality.explain",
         "virality.batch.ranking", "virality.batch.export", "virality.whatif", "virality.audio")


@pytest.fixture(autouse=True)
def same_help_width(monkeypatch):
    """argparse wraps help to the terminal: the same width in this process and the child."""
    monkeypatch.setenv("COLUMNS", "100")


def test_help_lists_every_command():
    done = run_process("--help")
    assert done.code == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: python -m virality")
    assert all(command in done.stdout for command in COMMANDS)
    assert done == run("--help")


def test_train_writes_the_bundle_the_engine_writes(tmp_path, synthetic_csv, tiny_bundle):
    """The CLI's recipe for ``--arch mlp_ensemble`` is shrunk to the tests' tiny one (in the
    child process only), so the bundle must equal the session's engine-trained one."""
    recipe = {name: value for name, value in TINY_CONFIG.items() if name != "arch"}
    done = run_process("train", "--data", str(synthetic_csv), "--out", str(tmp_path), "--arch", "mlp_ensemble",
                       "--quiet", setup=f"import virality.config\nvirality.config.PRESETS['mlp_ensemble'] = {recipe!r}")
    assert done.code == 0, done.stderr
    bundle_dir, engine = tiny_bundle
    saved = json.loads((tmp_path / META_FILE).read_text())
    assert saved["config"] == json.loads(json.dumps(engine["config"]))
    for name, values in engine["metrics"].items():
        assert saved["metrics"][name] == pytest.approx(values, abs=5e-4), name
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"trained on all {saved['data']['train_tracks']} tracks (")
    assert [line.split()[0] for line in lines[1:1 + len(saved["metrics"])]] == list(saved["metrics"])
    assert lines[-1] == f"saved to {tmp_path}"
    song_score = load_predictor(tmp_path).predict_song(default_song()).score
    assert song_score == pytest.approx(load_predictor(bundle_dir).predict_song(default_song()).score, abs=1e-3)


def test_score_writes_what_the_in_process_run_writes_and_imports_only_what_it_uses(tmp_path):
    out = tmp_path / "out.csv"
    done = run_process("score", str(DEMO_CSV), "-o", str(out), python_options=("-X", "importtime"))
    assert done.code == 0, done.stderr
    lines = done.stderr.splitlines()
    imported = [line.rsplit("|", 1)[-1].strip() for line in lines[1:] if line.startswith("import time:")]
    messages = [line for line in lines if not line.startswith("import time:")]
    written = out.read_bytes()
    again = run("score", str(DEMO_CSV), "-o", str(out))
    assert again.code == 0 and messages == again.stderr.splitlines() and done.stdout == again.stdout
    assert out.read_bytes() == written
    assert [m for m in imported if m.split(".")[0] in HEAVY or m.startswith(HEAVY)] == []
    assert "torch" in imported and "virality.batch.score" in imported  # the check sees real imports


def test_explain_prints_what_the_in_process_run_prints():
    args = ("explain", "--song", '{"energy": 0.2}', "--json")
    done = run_process(*args)
    assert done.code == 0 and "not given" in done.stderr
    assert set(json.loads(done.stdout)["attributions"]) == set(FEATURE_NAMES)
    assert done == run(*args)


def test_whatif_prints_what_the_in_process_run_prints():
    args = ("whatif", "--song", json.dumps(default_song()), "--gain", "3", "--vary", "loudness,tempo,key",
            "--max-changes", "2", "-k", "3")
    done = run_process(*args)
    assert done.code == 0 and done.stdout.startswith("current score ") and "\n1. " in done.stdout
    assert done == run(*args)


def test_features_prints_what_the_in_process_run_prints(tmp_path):
    path = tmp_path / "song.wav"
    path.write_bytes(wav_bytes(song(128, 2, True, 20.0)))
    done = run_process("features", str(path))
    assert done.code == 0 and "BPM" in done.stdout and "not measured" in done.stdout
    assert done == run("features", str(path))


def test_download_help_names_its_destination():
    done = run_process("download", "--help")
    assert done.code == 0 and "--dest" in done.stdout
    assert done == run("download", "--help")


# ---------------------------------------------------------------- download, in-process


def test_download_saves_validates_and_reports(monkeypatch, tmp_path, synthetic_csv):
    fetched = []

    def fake_fetch(id, output, quiet):
        fetched.append(id)
        shutil.copy(synthetic_csv, output)
        return output

    monkeypatch.setattr(gdown, "download", fake_fetch)
    done = run("download", "--dest", str(tmp_path / "data"))
    target = tmp_path / "data" / "tiktok_tracks.csv"
    data = load_tracks(synthetic_csv)
    assert done.code == 0 and done.stderr == "" and len(fetched) == 1
    assert done.stdout == (f"saved {target}: {data.n_rows} rows, {len(data.tracks)} tracks, "
                           f"{data.n_bad_rows} bad rows dropped\n")
    assert target.read_bytes() == synthetic_csv.read_bytes()


@pytest.mark.parametrize("failure", [None, ConnectionError("network is unreachable")])
def test_failed_download_is_one_line_and_status_2(monkeypatch, tmp_path, failure):
    def fake_fetch(id, output, quiet):
        if failure is not None:
            raise failure
        return None

    monkeypatch.setattr(gdown, "download", fake_fetch)
    done = run("download", "--dest", str(tmp_path))
    assert done.code == 2 and done.stdout == ""
    assert done.stderr.startswith("error: download of Google Drive file ") and done.stderr.count("\n") == 1
    assert ("network is unreachable" if failure else "nothing was saved") in done.stderr
