"""Training the bundled model: grouped split, ensemble fit, baselines, interval, artifacts."""

from __future__ import annotations

import copy
import dataclasses
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from virality import __version__
from virality.chunks import row_chunks
from virality.config import TrainConfig
from virality.data.tracks import ID_COLUMN, TARGET, file_sha256, group_kfold, group_split, load_tracks
from virality.features import FEATURE_NAMES, FEATURES
from virality.model.bundle import SCHEMA_VERSION, save_bundle
from virality.model.interval import fit_score_interval, interval_bounds
from virality.model.metrics import coverage, coverage_by_decile, regression_metrics
from virality.model.networks import Preprocessing, ViralityModel, rank_pairs

PERCENTILE_LEVELS = np.linspace(0, 100, 101)


def fit_model(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
              config: TrainConfig, progress: bool = True) -> tuple[ViralityModel, dict]:
    """Fit a ``ViralityModel`` with early stopping on the validation RMSE.

    ``X_*``: (n, 12) raw characteristics; ``y_*``: (n,) popularity. Returns the model at
    its best validation epoch (in eval mode) and a history dict. Runs on ``config.threads``
    torch threads (restored afterwards).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _fit(X_train, y_train, X_val, y_val, config, progress)
    finally:
        torch.set_num_threads(threads)


def _fit(X_train, y_train, X_val, y_val, config: TrainConfig, progress: bool) -> tuple[ViralityModel, dict]:
    arch_kwargs = dict(config.arch_kwargs)
    if config.arch == "additive" and "pairs" not in arch_kwargs:
        arch_kwargs["pairs"] = select_pairs(X_train, y_train, X_val, y_val, config, progress)
    torch.manual_seed(config.seed)
    prep = Preprocessing.fit(X_train, y_train, config.n_quantiles)
    model = ViralityModel(prep, config.arch, arch_kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    xt = torch.tensor(X_train, dtype=torch.float32)
    yt = torch.tensor((y_train - prep.target_mean) / prep.target_std, dtype=torch.float32)
    xv = torch.tensor(X_val, dtype=torch.float32)
    inputs_train = model.transform(xt)  # the transform has no trainable parts: compute once
    generator = torch.Generator().manual_seed(config.seed)
    best = (np.inf, 0, copy.deepcopy(model.state_dict()))
    history = {"val_rmse": []}
    bar = tqdm(range(config.max_epochs), desc="training", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        for batch in torch.randperm(len(xt), generator=generator).split(config.batch_size):
            outputs = _member_outputs(model.backbone, inputs_train[batch])
            loss = ((outputs - yt[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            val_rmse = float(np.sqrt(np.mean((model(xv).numpy() - y_val) ** 2)))
        history["val_rmse"].append(val_rmse)
        bar.set_postfix(val_rmse=f"{val_rmse:.2f}")
        if val_rmse < best[0] - 1e-4:
            best = (val_rmse, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= config.patience:
            break
    bar.close()
    model.load_state_dict(best[2])
    model.eval()
    history.update(best_epoch=best[1], best_val_rmse=best[0], epochs_run=len(history["val_rmse"]))
    return model, history


def select_pairs(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                 config: TrainConfig, progress: bool = False) -> list[list[int]]:
    """GA²M's two stages: fit the main effects alone, then screen pairs on their training
    residuals (``rank_pairs``). Returns ``config.n_pairs`` raw-characteristic index pairs."""
    if config.n_pairs == 0:
        return []
    mains_only = dataclasses.replace(config, arch_kwargs={**config.arch_kwargs, "pairs": []})
    model, _ = fit_model(X_train, y_train, X_val, y_val, mains_only, progress)
    with torch.inference_mode():
        z = model.transform(torch.as_tensor(X_train, dtype=torch.float32)).numpy()
    residual = y_train - predict_numpy(model, X_train)
    return rank_pairs(z, residual, config.n_pairs)


def _member_outputs(backbone: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """(members, n) when the backbone is an ensemble, else (1, n): each member gets its own loss."""
    if hasattr(backbone, "member_outputs"):
        return backbone.member_outputs(inputs)
    return backbone(inputs)[None]


def predict_numpy(model: ViralityModel, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """(n, 12) raw → (n,) unclipped points, in chunks under inference mode."""
    out = []
    with torch.inference_mode():
        for rows in row_chunks(len(X), chunk):
            out.append(model(torch.as_tensor(X[rows], dtype=torch.float32)).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def cross_fitted_scores(X: np.ndarray, y: np.ndarray, ids: np.ndarray, config: TrainConfig,
                        progress: bool = False) -> np.ndarray:
    """Out-of-fold scores for calibrating the interval: (n, 12) raw, (n,) popularity, (n,)
    track ids → (n,) clipped points, each track scored by a model that never saw it.

    ``config.calibration_folds`` folds grouped by id; for each, a model configured as
    ``config`` trains on the other folds minus a grouped hold-out of
    ``config.calibration_stop_fraction`` that stops its training early, then scores the
    fold. The early-stopping tracks are never the scored ones, so the residuals are honest.
    """
    share = config.calibration_stop_fraction
    scores = np.full(len(y), np.nan)
    folds = group_kfold(ids, config.calibration_folds, config.seed)
    for k, (inner, scored) in enumerate(tqdm(folds, desc="calibration folds", disable=not progress, leave=False)):
        fit, stop = group_split(ids[inner], (1 - share, share), config.seed + k)
        model, _ = fit_model(X[inner][fit], y[inner][fit], X[inner][stop], y[inner][stop], config, progress=False)
        scores[scored] = np.clip(predict_numpy(model, X[scored]), 0, 100)
    return scores


def calibrate_interval(X: np.ndarray, y: np.ndarray, ids: np.ndarray, config: TrainConfig,
                       progress: bool = False) -> dict:
    """The interval (``metrics.fit_score_interval``) fitted on ``cross_fitted_scores`` of
    the given tracks, its shape chosen on them alone; records how it was calibrated."""
    scores = cross_fitted_scores(X, y, ids, config, progress)
    interval = fit_score_interval(scores, y, config.interval_level, tuple(config.interval_forms),
                                  config.interval_selection_folds, config.seed, config.interval_selection_repeats)
    return {**interval, "calibration": f"cross-fitted on {config.calibration_folds} folds grouped by track (each "
                                       "track scored by a model trained and early-stopped without it)",
            "calibration_tracks": len(np.unique(ids))}


def ridge_baseline(model: ViralityModel, X_train, y_train, X_test) -> np.ndarray:
    """Ridge regression on the same transformed inputs, alpha by leave-one-out CV on train."""
    from sklearn.linear_model import RidgeCV

    with torch.inference_mode():
        z_train = model.transform(torch.as_tensor(X_train, dtype=torch.float32)).numpy()
        z_test = model.transform(torch.as_tensor(X_test, dtype=torch.float32)).numpy()
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit(z_train, y_train)
    return ridge.predict(z_test)


def distribution_summary(model: ViralityModel, X_train: np.ndarray) -> dict:
    """What the app needs to judge "unlike real tracks", without storing any track.

    Mean and precision of the transformed inputs (for a Mahalanobis distance), the 99th
    percentile of the training tracks' squared distances (the warning threshold), the
    0.5 % / 99.5 % quantiles of each raw characteristic, and the (101, 12) quantile table
    used to sample synthetic typical tracks.
    """
    with torch.inference_mode():
        z = model.transform(torch.as_tensor(X_train, dtype=torch.float32)).numpy().astype(np.float64)
    mean = z.mean(0)
    cov = np.cov(z, rowvar=False) + 1e-6 * np.eye(z.shape[1])
    precision = np.linalg.inv(cov)
    d2 = np.einsum("ni,ij,nj->n", z - mean, precision, z - mean)
    normal_scores = z[:, : len(FEATURE_NAMES) - 2]
    return {
        "mean": mean.tolist(),
        "precision": precision.tolist(),
        "d2_threshold": float(np.quantile(d2, 0.99)),
        "low": np.quantile(X_train, 0.005, axis=0).tolist(),
        "high": np.quantile(X_train, 0.995, axis=0).tolist(),
        "quantiles": np.quantile(X_train, PERCENTILE_LEVELS / 100, axis=0).tolist(),
        "normal_correlation": np.corrcoef(normal_scores, rowvar=False).tolist(),
    }


def train(data_path: str | Path, out_dir: str | Path, config: TrainConfig | None = None,
          progress: bool = True) -> dict:
    """Train on ``data_path``, evaluate on unseen tracks, write the bundle to ``out_dir``.

    Returns the metadata written to ``out_dir/metadata.json``.
    """
    config = config or TrainConfig()
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    data = load_tracks(data_path)
    tracks = data.tracks
    X = tracks[list(FEATURE_NAMES)].to_numpy(np.float64)
    y = tracks[TARGET].to_numpy(np.float64)
    train_idx, val_idx, test_idx = group_split(
        tracks[ID_COLUMN].to_numpy(), (1 - config.val_fraction - config.test_fraction,
                                       config.val_fraction, config.test_fraction), config.seed)
    model, history = fit_model(X[train_idx], y[train_idx], X[val_idx], y[val_idx], config, progress)
    calibration_idx = np.sort(np.concatenate([train_idx, val_idx]))  # every track but the test ones
    interval = calibrate_interval(X[calibration_idx], y[calibration_idx], tracks[ID_COLUMN].to_numpy()[calibration_idx],
                                  config, progress)
    test_pred = np.clip(predict_numpy(model, X[test_idx]), 0, 100)
    metrics = {
        "model": regression_metrics(y[test_idx], test_pred),
        "mean_predictor": regression_metrics(y[test_idx], np.full(len(test_idx), y[train_idx].mean())),
        "ridge": regression_metrics(y[test_idx], ridge_baseline(model, X[train_idx], y[train_idx], X[test_idx])),
    }
    test_low, test_high = interval_bounds(interval, test_pred)
    all_pred = np.clip(predict_numpy(model, X), 0, 100)
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "virality_version": __version__,
        "features": [{"name": f.name, "label": f.label, "unit": f.unit, "low": f.low, "high": f.high,
                      "step": f.step, "default": f.default} for f in FEATURES],
        "model": {"arch": model.arch, "arch_kwargs": _plain(model.arch_kwargs)},
        "config": config.to_dict(),
        "seed": config.seed,
        "data": {"path_name": Path(data_path).name, "sha256": file_sha256(data_path), "rows": data.n_rows,
                 "bad_rows": data.n_bad_rows, "tracks": len(tracks), "train_tracks": len(train_idx),
                 "val_tracks": len(val_idx), "test_tracks": len(test_idx)},
        "training_medians": dict(zip(FEATURE_NAMES, np.median(X[train_idx], axis=0).tolist())),
        "metrics": metrics,
        "interval": {**interval,
                     "test_coverage": coverage(y[test_idx], test_low, test_high),
                     "test_mean_width": float(np.mean(test_high - test_low)),
                     "test_coverage_by_decile": coverage_by_decile(test_pred, y[test_idx], test_low, test_high)},
        "scores": {"levels": PERCENTILE_LEVELS.tolist(),
                   "predicted_quantiles": np.quantile(all_pred, PERCENTILE_LEVELS / 100).tolist(),
                   "popularity_quantiles": np.quantile(y, PERCENTILE_LEVELS / 100).tolist()},
        "distribution": distribution_summary(model, X[train_idx]),
        "history": {k: history[k] for k in ("best_epoch", "best_val_rmse", "epochs_run")},
        "versions": _library_versions(),
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    save_bundle(out_dir, model, metadata)
    return metadata


def _plain(kwargs: dict) -> dict:
    """Constructor arguments as JSON-friendly lists."""
    return {k: [list(i) if isinstance(i, (tuple, list)) else i for i in v] if isinstance(v, (tuple, list)) else v
            for k, v in kwargs.items()}


def _library_versions() -> dict[str, str]:
    import pandas
    import sklearn

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "pandas": pandas.__version__, "scikit-learn": sklearn.__version__}
