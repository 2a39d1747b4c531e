"""Shared fixtures: tiny seeded synthetic data, one tiny model trained once per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from virality.config import TrainConfig
from virality.features import FEATURE_NAMES

ROOT = Path(__file__).resolve().parent.parent

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test`'s workers share the 2 cores: one torch thread each
    import torch

    torch.set_num_threads(1)


def synthetic_tracks(n_tracks: int = 400, seed: int = 0, duplicates: int = 100) -> pd.DataFrame:
    """Invented tracks in the published CSV's layout; popularity depends on danceability
    and energy (with an interaction) plus noise. ``duplicates`` tracks appear twice, in
    another playlist, with popularity differing by 2 points (median = their mean)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "track_id": [f"trk{i:05d}" for i in range(n_tracks)],
        "track_name": [f"Synthetic {i}" for i in range(n_tracks)],
        "danceability": rng.uniform(0.2, 0.95, n_tracks).round(3),
        "energy": rng.uniform(0.1, 1.0, n_tracks).round(3),
        "key": rng.integers(0, 12, n_tracks),
        "loudness": rng.uniform(-20, -2, n_tracks).round(2),
        "mode": rng.integers(0, 2, n_tracks),
        "speechiness": rng.uniform(0.02, 0.5, n_tracks).round(3),
        "acousticness": rng.uniform(0, 1, n_tracks).round(3),
        "instrumentalness": np.where(rng.random(n_tracks) < 0.7, 0.0, rng.uniform(0, 1, n_tracks)).round(3),
        "liveness": rng.uniform(0.03, 0.8, n_tracks).round(3),
        "valence": rng.uniform(0.05, 0.98, n_tracks).round(3),
        "tempo": rng.uniform(60, 200, n_tracks).round(2),
        "duration": rng.integers(90_000, 300_000, n_tracks),
    })
    signal = 40 + 40 * frame["danceability"] + 20 * frame["energy"] * frame["danceability"]
    frame["popularity"] = np.clip(signal + rng.normal(0, 3, n_tracks), 0, 100).round()
    dup = frame.sample(duplicates, random_state=seed).copy()
    frame["playlist_name"], dup["playlist_name"] = "A", "B"
    dup["popularity"] = np.clip(dup["popularity"] + 2, 0, 100)
    columns = ["track_id", "track_name", "popularity", *FEATURE_NAMES, "playlist_name"]
    return pd.concat([frame, dup], ignore_index=True)[columns]


TINY_CONFIG = dict(arch="mlp_ensemble", max_epochs=40, patience=10,
                   arch_kwargs={"hidden": (16, 16), "n_members": 2, "dropout": 0.0},
                   lr=3e-3, threads=1)


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tracks.csv"
    synthetic_tracks().to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, synthetic_csv) -> tuple[Path, dict]:
    """A model trained once per session on the synthetic tracks (a few seconds)."""
    from virality.model.training import train

    out = tmp_path_factory.mktemp("bundle")
    metadata = train(synthetic_csv, out, TrainConfig(**TINY_CONFIG), progress=False)
    return out, metadata


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    """A copy of the tiny bundle a test may damage."""
    from virality.model.bundle import load_bundle

    folder, _ = tiny_bundle
    for item in folder.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    load_bundle(tmp_path)  # the untouched copy loads
    return tmp_path


@pytest.fixture(scope="session")
def bundled():
    """The committed model in artifacts/."""
    from virality.model.prediction import load_predictor

    return load_predictor()


@pytest.fixture
def typical_song() -> dict[str, float]:
    from virality.features import default_song

    return default_song()
