"""What is trusted, checked (see SECURITY.md).

Nothing a user gives is unpickled; the only unpickling is of the bundle in ``artifacts/``,
and only bytes whose SHA-256 matches ``metadata.json``; weights load with
``weights_only=True``; the Streamlit server keeps XSRF protection and an upload limit.
"""

from __future__ import annotations

import ast
import hashlib
import json
import tomllib
from pathlib import Path

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
