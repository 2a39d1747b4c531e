"""Saving and loading the model bundle in ``artifacts/``.

Files: ``model.pt`` (a state_dict, loaded with ``weights_only=True``), ``preprocess.joblib``
(the fitted preprocessing as a plain dict of lists), ``metadata.json`` (constructor
arguments, schema version, metrics, SHA-256 of the two other files; read through the typed
``virality.model.metadata.BundleMetadata``). The joblib file is unpickled only after its
SHA-256 matches the metadata, and only from the bundle folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path

import joblib
import torch

from virality.config import ARTIFACTS_DIR
from virality.features import FEATURE_NAMES
from virality.model.fit import FitConfig, TikTokFit
from virality.model.metadata import BundleError, BundleMetadata
from virality.model.networks import Preprocessing, ViralityModel

SCHEMA_VERSION = 2  # 2: trained on every track, judged out of fold; song groups
MODEL_FILE, PREP_FILE, META_FILE = "model.pt", "preprocess.joblib", "metadata.json"
FIT_FILE = "fit.pt"  # the TikTok-fit model's state_dict, when trained with the catalogue


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified_bytes(path: Path, expected: str) -> bytes:
    """The file's bytes if their SHA-256 is ``expected``: the very bytes that were hashed
    are the ones unpickled, so the file cannot change between the check and the load."""
    data = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != expected:
        raise BundleError(f"{path} does not match the SHA-256 in metadata.json: refusing to load it")
    return data


def save_bundle(out_dir: str | Path, model: ViralityModel, metadata: dict, prep: Preprocessing | None = None,
                fit: TikTokFit | None = None) -> None:
    """Write the bundle files (and ``fit.pt`` with a TikTok-fit model); adds their hashes to
    ``metadata`` before saving it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prep = prep or model.preprocessing
    torch.save(model.state_dict(), out / MODEL_FILE)
    joblib.dump(prep.to_dict(), out / PREP_FILE)
    written = [MODEL_FILE, PREP_FILE]
    (out / FIT_FILE).unlink(missing_ok=True)  # never leave an older fit beside a bundle trained without one
    if fit is not None:
        torch.save(fit.state_dict(), out / FIT_FILE)
        written.append(FIT_FILE)
    metadata["files"] = {name: _sha256(out / name) for name in written}
    (out / META_FILE).write_text(json.dumps(metadata, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load_bundle(path: str | Path = ARTIFACTS_DIR) -> tuple[ViralityModel, BundleMetadata]:
    """Load ``(model in eval mode, its metadata)``; raise ``BundleError`` with a plain reason
    (a section or field missing from metadata.json is named)."""
    folder = Path(path)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise BundleError(f"no trained model in {folder}: run `python -m virality train --data PATH --out {folder}`")
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    if metadata.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(f"{folder} holds schema version {metadata.get('schema_version')}, "
                          f"this code reads {SCHEMA_VERSION}: retrain the model")
    info = BundleMetadata.from_dict(metadata, str(meta_path))
    if info.feature_names != FEATURE_NAMES:
        raise BundleError(f"{folder} was trained on other characteristics: retrain the model")
    expected = {MODEL_FILE, PREP_FILE} | ({FIT_FILE} if info.fit is not None else set())
    if set(info.files) != expected:
        raise BundleError(f"{meta_path} lists no SHA-256 for the model files: retrain the model")
    verified = {name: _verified_bytes(folder / name, expected) for name, expected in info.files.items()}
    prep = Preprocessing.from_dict(joblib.load(io.BytesIO(verified[PREP_FILE])))
    model = ViralityModel(prep, info.model.arch, dict(info.model.arch_kwargs))
    try:
        state = torch.load(io.BytesIO(verified[MODEL_FILE]), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        raise BundleError(f"{folder / MODEL_FILE} holds more than tensors: refusing to load it "
                          f"({str(err).splitlines()[0][:120]})") from None
    model.load_state_dict(state)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, info


def load_fit(path: str | Path, info: BundleMetadata) -> TikTokFit | None:
    """The bundle's TikTok-fit model in eval mode (None when it was trained without the
    catalogue), from SHA-256-verified tensors only."""
    if info.fit is None:
        return None
    folder = Path(path)
    data = _verified_bytes(folder / FIT_FILE, info.files[FIT_FILE])
    fit = TikTokFit(Preprocessing.from_dict(dict(info.fit.preprocessing)), FitConfig.from_dict(dict(info.fit.config)),
                    tuple(info.fit.platt))
    try:
        fit.load_state_dict(torch.load(io.BytesIO(data), weights_only=True, map_location="cpu"))
    except pickle.UnpicklingError as err:
        raise BundleError(f"{folder / FIT_FILE} holds more than tensors: refusing to load it "
                          f"({str(err).splitlines()[0][:120]})") from None
    fit.eval()
    for parameter in fit.parameters():
        parameter.requires_grad_(False)
    return fit
