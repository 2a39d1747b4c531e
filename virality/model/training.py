"""Training the bundled model: cross-fitting by song, the final fit on every track, baselines, interval, artifacts.

The shipped recipe (``fit_shipped``): ``config.calibration_folds`` folds grouped by song; in each,
a model trains on the other folds (early-stopped on a grouped hold-out of them) and scores its
fold. Those out-of-fold scores are the quoted error (every track scored by a model that never
saw it) and calibrate the interval; the final model then trains on every track for the median
of the folds' best epoch counts.
"""

from __future__ import annotations

import contextlib
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
from virality.data.catalogue import ERA_YEAR, load_fit_data
from virality.data.tracks import GROUP_COLUMN, TARGET, file_sha256, group_kfold, group_split, load_tracks
from virality.features import FEATURE_NAMES, FEATURES
from virality.model.bundle import SCHEMA_VERSION, save_bundle
from virality.model.fit import FitConfig, TikTokFit, calibration_bins, fit_metrics, train_fit
from virality.model.interval import fit_score_interval, interval_bounds
from virality.model.metrics import coverage, coverage_by_decile, regression_metrics
from virality.model.networks import Preprocessing, ViralityModel, rank_pairs

PERCENTILE_LEVELS = np.linspace(0, 100, 101)


def fit_model(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None,
              config: TrainConfig, progress: bool = True) -> tuple[ViralityModel, dict]:
    """Fit a ``ViralityModel`` with early stopping on the validation RMSE.

    ``X_*``: (n, 12) raw characteristics; ``y_*``: (n,) popularity. Returns the model at
    its best validation epoch (in eval mode) and a history dict. Without validation tracks
    (``X_val`` None) it trains exactly ``config.max_epochs`` epochs and keeps the last. Runs on
    ``config.threads`` torch threads (restored afterwards).
    """
    with _threads(config.threads):
        arch_kwargs = dict(config.arch_kwargs)
        if config.arch == "additive" and "pairs" not in arch_kwargs:
            arch_kwargs["pairs"] = select_pairs(X_train, y_train, X_val, y_val, config, progress)
        torch.manual_seed(config.seed)
        model = ViralityModel(Preprocessing.fit(X_train, y_train, config.n_quantiles), config.arch, arch_kwargs)
        return _train(model, X_train, y_train, X_val, y_val, config, progress)


def continue_training(model: ViralityModel, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray | None,
                      y_val: np.ndarray | None, config: TrainConfig, progress: bool = False) -> tuple[ViralityModel, dict]:
    """Train an existing ``model`` further (e.g. fine-tune a pretrained one) exactly as ``fit_model``
    trains a new one: its own input transform and target scaling are kept, the loss is on targets
    standardised by them; ``config`` gives the optimiser, epochs, patience, seed and threads. The
    model is trained in place; returns it at its best validation epoch and the history."""
    with _threads(config.threads):
        torch.manual_seed(config.seed)
        return _train(model, X_train, y_train, X_val, y_val, config, progress)


@contextlib.contextmanager
def _threads(n: int):
    """Run torch on ``n`` CPU threads inside the block, restoring the count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train(model: ViralityModel, X_train, y_train, X_val, y_val, config: TrainConfig,
           progress: bool) -> tuple[ViralityModel, dict]:
    prep = model.preprocessing
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    xt = torch.tensor(X_train, dtype=torch.float32)
    yt = torch.tensor((y_train - prep.target_mean) / prep.target_std, dtype=torch.float32)
    xv = None if X_val is None else torch.tensor(X_val, dtype=torch.float32)
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
        if xv is None:
            best = (np.nan, epoch, None)
            continue
        with torch.inference_mode():
            val_rmse = float(np.sqrt(np.mean((model(xv).numpy() - y_val) ** 2)))
        history["val_rmse"].append(val_rmse)
        bar.set_postfix(val_rmse=f"{val_rmse:.2f}")
        if val_rmse < best[0] - 1e-4:
            best = (val_rmse, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= config.patience:
            break
    bar.close()
    if best[2] is not None:
        model.load_state_dict(best[2])
    model.eval()
    history.update(best_epoch=best[1], best_val_rmse=best[0], epochs_run=best[1] + 1 if xv is None else
                   len(history["val_rmse"]))
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


@dataclasses.dataclass
class CrossFit:
    """Out-of-fold results over the given tracks, each scored by a model that never saw its song:
    ``scores`` (n,) clipped points of the network, ``ridge`` and ``mean`` (n,) the baselines trained
    on the same folds, ``best_epochs`` each fold's early-stopped epoch (0-based)."""

    scores: np.ndarray
    ridge: np.ndarray
    mean: np.ndarray
    best_epochs: list[int]


def cross_fit(X: np.ndarray, y: np.ndarray, groups: np.ndarray, config: TrainConfig,
              progress: bool = False) -> CrossFit:
    """(n, 12) raw, (n,) popularity, (n,) song groups → ``CrossFit``.

    ``config.calibration_folds`` folds grouped by song; for each, a model configured as
    ``config`` trains on the other folds minus a grouped hold-out of
    ``config.calibration_stop_fraction`` that stops its training early, then scores the
    fold. The early-stopping tracks are never the scored ones, so the residuals are honest.
    """
    share = config.calibration_stop_fraction
    scores, ridge, mean = (np.full(len(y), np.nan) for _ in range(3))
    epochs = []
    folds = group_kfold(groups, config.calibration_folds, config.seed)
    for k, (inner, scored) in enumerate(tqdm(folds, desc="cross-fitting", disable=not progress, leave=False)):
        fit, stop = group_split(groups[inner], (1 - share, share), config.seed + k)
        model, history = fit_model(X[inner][fit], y[inner][fit], X[inner][stop], y[inner][stop], config, progress=False)
        scores[scored] = np.clip(predict_numpy(model, X[scored]), 0, 100)
        ridge[scored] = np.clip(ridge_baseline(model, X[inner], y[inner], X[scored]), 0, 100)
        mean[scored] = y[inner].mean()
        epochs.append(int(history["best_epoch"]))
    return CrossFit(scores, ridge, mean, epochs)


def cross_fitted_scores(X: np.ndarray, y: np.ndarray, groups: np.ndarray, config: TrainConfig,
                        progress: bool = False) -> np.ndarray:
    """The network's out-of-fold scores of ``cross_fit`` (n,), for calibrating the interval."""
    return cross_fit(X, y, groups, config, progress).scores


def interval_from(scores: np.ndarray, y: np.ndarray, groups: np.ndarray, config: TrainConfig) -> dict:
    """The interval (``interval.fit_score_interval``) fitted on out-of-fold ``scores``, its shape
    chosen on them alone; records how it was calibrated."""
    interval = fit_score_interval(scores, y, config.interval_level, tuple(config.interval_forms),
                                  config.interval_selection_folds, config.seed, config.interval_selection_repeats)
    return {**interval, "calibration": f"cross-fitted on {config.calibration_folds} folds grouped by song (each "
                                       "track scored by a model trained and early-stopped without it)",
            "calibration_tracks": len(y), "calibration_songs": len(np.unique(groups))}


def calibrate_interval(X: np.ndarray, y: np.ndarray, groups: np.ndarray, config: TrainConfig,
                       progress: bool = False) -> dict:
    """``interval_from`` the ``cross_fitted_scores`` of the given tracks."""
    return interval_from(cross_fitted_scores(X, y, groups, config, progress), y, groups, config)


def fit_shipped(X: np.ndarray, y: np.ndarray, groups: np.ndarray, config: TrainConfig,
                progress: bool = False) -> tuple[ViralityModel, dict, CrossFit]:
    """The shipped recipe (module doc) on (n, 12) raw, (n,) popularity, (n,) song groups →
    (the final model trained on every track, its interval, the cross-fit it was judged by)."""
    if config.arch == "additive" and "pairs" not in config.arch_kwargs:
        share = config.calibration_stop_fraction
        fit, stop = group_split(groups, (1 - share, share), config.seed)
        pairs = select_pairs(X[fit], y[fit], X[stop], y[stop], config, progress)
        config = dataclasses.replace(config, arch_kwargs={**config.arch_kwargs, "pairs": pairs})
    crossfit = cross_fit(X, y, groups, config, progress)
    interval = interval_from(crossfit.scores, y, groups, config)
    epochs = int(np.median(crossfit.best_epochs)) + 1
    model, _ = fit_model(X, y, None, None, dataclasses.replace(config, max_epochs=epochs), progress)
    return model, interval, crossfit


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
          progress: bool = True, catalogue_path: str | Path | None = None,
          fit_config: FitConfig | None = None) -> dict:
    """Train on ``data_path`` with the shipped recipe (``fit_shipped``) and, given the
    catalogue (``spotify_songs.csv``), the TikTok-fit model (``virality.model.fit``); write the
    bundle to ``out_dir``. Returns the metadata written to ``out_dir/metadata.json``.
    """
    config = config or TrainConfig()
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    data = load_tracks(data_path)
    tracks = data.tracks
    X = tracks[list(FEATURE_NAMES)].to_numpy(np.float64)
    y = tracks[TARGET].to_numpy(np.float64)
    groups = tracks[GROUP_COLUMN].to_numpy()
    model, interval, crossfit = fit_shipped(X, y, groups, config, progress)
    low, high = interval_bounds(interval, crossfit.scores)
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
                 "bad_rows": data.n_bad_rows, "tracks": len(tracks), "songs": int(len(np.unique(groups))),
                 "train_tracks": len(tracks), "evaluation": f"{config.calibration_folds}-fold cross-fitting "
                                                            "grouped by song (out-of-fold scores)"},
        "training_medians": dict(zip(FEATURE_NAMES, np.median(X, axis=0).tolist())),
        # every track scored by a fold model that never saw its song: the recipe's error on unseen tracks
        "metrics": {"model": regression_metrics(y, crossfit.scores),
                    "mean_predictor": regression_metrics(y, crossfit.mean),
                    "ridge": regression_metrics(y, crossfit.ridge)},
        "interval": {**interval,
                     # the interval's ends were fitted on these same out-of-fold scores: in-sample coverage,
                     # not a held-out figure (benchmarks/models.py measures that on outer folds)
                     "fitted_coverage": coverage(y, low, high),
                     "fitted_mean_width": float(np.mean(high - low)),
                     "fitted_coverage_by_decile": coverage_by_decile(crossfit.scores, y, low, high)},
        "scores": {"levels": PERCENTILE_LEVELS.tolist(),
                   "predicted_quantiles": np.quantile(all_pred, PERCENTILE_LEVELS / 100).tolist(),
                   "popularity_quantiles": np.quantile(y, PERCENTILE_LEVELS / 100).tolist()},
        "distribution": distribution_summary(model, X),
        "history": {"fold_best_epochs": crossfit.best_epochs, "final_epochs": int(np.median(crossfit.best_epochs)) + 1},
        "versions": _library_versions(),
    }
    fit = None
    if catalogue_path is not None:
        fit, metadata["fit"] = train_tiktok_fit(data_path, catalogue_path, fit_config or FitConfig(seed=config.seed))
    metadata["train_seconds"] = round(time.perf_counter() - started, 2)
    save_bundle(out_dir, model, metadata, fit=fit)
    return metadata


def train_tiktok_fit(data_path: str | Path, catalogue_path: str | Path, config: FitConfig) -> tuple[TikTokFit, dict]:
    """The TikTok-fit model on both files and the ``fit`` section of metadata.json: recipe,
    Platt scaling, the transform's knots, out-of-fold figures overall and in the era check,
    the reliability curve, catalogue and TikTok quantiles of the fit, the data's summary."""
    started = time.perf_counter()
    data = load_fit_data(data_path, catalogue_path)
    X, y = data.X, data.y
    fit, oof, histories = train_fit(X, y, data.groups, config)
    era = data.era_mask()
    percent = 100 * oof
    section = {
        "config": config.to_dict(),
        "platt": fit.platt.tolist(),
        "preprocessing": fit.parts[0].preprocessing.to_dict(),
        "metrics": {"overall": fit_metrics(y, oof), "era": fit_metrics(y[era], oof[era])},
        "reliability": calibration_bins(y, oof),
        "levels": PERCENTILE_LEVELS.tolist(),
        "catalogue_quantiles": np.quantile(percent[y == 0], PERCENTILE_LEVELS / 100).tolist(),
        "tiktok_quantiles": np.quantile(percent[y == 1], PERCENTILE_LEVELS / 100).tolist(),
        "data": {**data.sources, "songs": int(len(np.unique(data.groups))), "era_year": ERA_YEAR,
                 "era_catalogue_tracks": int(((y == 0) & era).sum()),
                 "evaluation": f"{config.folds}-fold cross-fitting grouped by song, stratified by side "
                               "(out-of-fold probabilities)"},
        "history": histories,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return fit, section


def _plain(kwargs: dict) -> dict:
    """Constructor arguments as JSON-friendly lists."""
    return {k: [list(i) if isinstance(i, (tuple, list)) else i for i in v] if isinstance(v, (tuple, list)) else v
            for k, v in kwargs.items()}


def _library_versions() -> dict[str, str]:
    import pandas
    import sklearn

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "pandas": pandas.__version__, "scikit-learn": sklearn.__version__}
