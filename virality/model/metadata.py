"""The bundle's ``metadata.json`` as typed, read-only sections, built once when it loads.

Training writes the plain dict (``virality.model.training.train``) and ``save_bundle`` dumps
it; everything that reads it goes through ``BundleMetadata`` (``Predictor.info``), so a
missing section or field is one ``BundleError`` at load time naming it, never a
``KeyError`` deep in a page. Arrays are float64 and read-only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from virality.config import TrainConfig
from virality.features import FEATURE_NAMES
from virality.model.interval import interval_bounds


class BundleError(RuntimeError):
    """The artifacts folder is missing, tampered with, or from another schema version."""


@dataclass(frozen=True)
class ModelSpec:
    """Which network the bundle holds: a key of ``networks.ARCHITECTURES`` and its
    constructor arguments (JSON lists)."""

    arch: str
    arch_kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class DataSummary:
    """The training file, what was kept (rows, distinct tracks, songs: tracks grouped by
    ``track_id`` or name + artist) and how the model was judged (``evaluation``)."""

    path_name: str
    sha256: str
    rows: int
    bad_rows: int
    tracks: int
    songs: int
    train_tracks: int  # every track: the shipped model trains on all of them
    evaluation: str


@dataclass(frozen=True)
class RegressionMetrics:
    """``metrics.regression_metrics`` on tracks the model never saw: R², RMSE and MAE in points, Spearman."""

    r2: float
    rmse: float
    mae: float
    spearman: float


@dataclass(frozen=True)
class HeldOutMetrics:
    """The shipped recipe and the two baselines it is compared with, out of fold: each track
    scored by a model trained (and early-stopped) without its song."""

    model: RegressionMetrics
    mean_predictor: RegressionMetrics
    ridge: RegressionMetrics


@dataclass(frozen=True, eq=False)
class IntervalInfo:
    """The prediction interval: its nominal ``level`` (0–1), mean ``half_width`` (points),
    ``fitted_coverage`` on the out-of-fold scores it was fitted to (in-sample: the held-out figure
    is benchmarks/models.py's), how it was calibrated and ``fit``,
    the fitted ends exactly as ``interval.fit_score_interval`` wrote them (read by ``bounds``)."""

    level: float
    half_width: float
    fitted_coverage: float | None = None
    calibration: str | None = None
    calibration_tracks: int | None = None
    form: str | None = None  # shape of the ends, e.g. "hinge6" (``interval.INTERVAL_FORMS``)
    fit: Mapping[str, Any] = field(default_factory=dict)

    def bounds(self, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) clipped scores → (low, high), each (n,) in 0–100 points."""
        return interval_bounds(self.fit, score)


@dataclass(frozen=True, eq=False)
class ScoreQuantiles:
    """The model's scores of every training track at percent ``levels`` (101,), for percentiles."""

    levels: np.ndarray
    predicted_quantiles: np.ndarray


@dataclass(frozen=True, eq=False)
class Distribution:
    """The training tracks, summarised (``training.distribution_summary``; no track is stored).

    ``mean`` (13,) and ``precision`` (13, 13) of the transformed inputs and ``d2_threshold``,
    the 99th percentile of the tracks' squared Mahalanobis distance; ``low``/``high`` (12,):
    each characteristic's 0.5 % / 99.5 % quantile (Spotify units); ``quantiles`` (101, 12) at
    0, 1, …, 100 %; ``normal_correlation`` (10, 10) of the continuous characteristics' normal scores.
    """

    mean: np.ndarray
    precision: np.ndarray
    d2_threshold: float
    low: np.ndarray
    high: np.ndarray
    quantiles: np.ndarray
    normal_correlation: np.ndarray


@dataclass(frozen=True)
class FitMetrics:
    """``fit.fit_metrics`` under equal priors: AUC, log loss, Brier score, ECE (0–1 scale)."""

    auc: float
    log_loss: float
    brier: float
    ece: float


@dataclass(frozen=True, eq=False)
class FitInfo:
    """The TikTok-fit model (``virality.model.fit``): its recipe, its Platt scaling, the input
    transform's knots (``preprocessing``), its out-of-fold figures (``overall`` and ``era``:
    against catalogue tracks released 2017 or later), the reliability curve
    (``reliability``: bins of ``fit.calibration_bins``), the fit of catalogue and TikTok
    tracks at the 101 percent ``levels`` (``catalogue_quantiles``, ``tiktok_quantiles``), and
    what it was trained on (``data``)."""

    config: Mapping[str, Any]
    platt: np.ndarray
    preprocessing: Mapping[str, Any]
    overall: FitMetrics
    era: FitMetrics
    reliability: tuple
    levels: np.ndarray
    catalogue_quantiles: np.ndarray
    tiktok_quantiles: np.ndarray
    data: Mapping[str, Any]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str) -> FitInfo:
        section = _section(raw, "fit", source)
        metrics = _section(section, "metrics", source, "fit.")
        return _build(cls, raw, "fit", source, overall=_build(FitMetrics, metrics, "overall", source, "fit.metrics."),
                      era=_build(FitMetrics, metrics, "era", source, "fit.metrics."),
                      reliability=tuple(MappingProxyType(dict(b)) for b in _required(section, "reliability", source, "fit.")),
                      config=MappingProxyType(dict(_section(section, "config", source, "fit."))),
                      preprocessing=MappingProxyType(dict(_section(section, "preprocessing", source, "fit."))),
                      data=MappingProxyType(dict(_section(section, "data", source, "fit."))))


@dataclass(frozen=True, eq=False)
class BundleMetadata:
    """Typed view of ``metadata.json`` (``from_dict``); ``files``: SHA-256 per bundle file."""

    feature_names: tuple[str, ...]
    model: ModelSpec
    config: TrainConfig
    data: DataSummary
    training_medians: Mapping[str, float]
    metrics: HeldOutMetrics
    interval: IntervalInfo
    scores: ScoreQuantiles
    distribution: Distribution
    files: Mapping[str, str]
    train_seconds: float | None = None
    fit: FitInfo | None = None  # None: trained without the catalogue (no TikTok fit)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "metadata.json") -> BundleMetadata:
        """Validate and convert the parsed JSON; ``BundleError`` naming the first missing
        section or field (``source`` is the file named in the message)."""
        interval, metrics = _section(raw, "interval", source), _section(raw, "metrics", source)
        medians = _section(raw, "training_medians", source)
        missing = [n for n in FEATURE_NAMES if n not in medians]
        if missing:
            raise _missing(source, f"training_medians.{missing[0]}")
        return cls(
            feature_names=tuple(f["name"] for f in _required(raw, "features", source)),
            model=_build(ModelSpec, raw, "model", source),
            config=TrainConfig.from_dict(_section(raw, "config", source)),
            data=_build(DataSummary, raw, "data", source),
            training_medians=MappingProxyType({n: float(medians[n]) for n in FEATURE_NAMES}),
            metrics=HeldOutMetrics(**{f.name: _build(RegressionMetrics, metrics, f.name, source, "metrics.")
                                      for f in dataclasses.fields(HeldOutMetrics)}),
            interval=_build(IntervalInfo, raw, "interval", source, form=interval.get("selection", {}).get("form"),
                            fit=MappingProxyType(dict(interval))),
            scores=_build(ScoreQuantiles, raw, "scores", source),
            distribution=_build(Distribution, raw, "distribution", source),
            files=MappingProxyType(dict(raw.get("files", {}))),  # load_bundle says when they are missing
            train_seconds=raw.get("train_seconds"),
            fit=FitInfo.from_dict(raw, source) if "fit" in raw else None,
        )


def _missing(source: str, name: str) -> BundleError:
    return BundleError(f"{source} has no '{name}' (not written by this version's training): retrain the model")


def _required(raw: Mapping[str, Any], key: str, source: str, prefix: str = "") -> Any:
    if key not in raw:
        raise _missing(source, prefix + key)
    return raw[key]


def _section(raw: Mapping[str, Any], key: str, source: str, prefix: str = "") -> Mapping[str, Any]:
    section = _required(raw, key, source, prefix)
    if not isinstance(section, Mapping):
        raise BundleError(f"{source}: '{prefix + key}' is not a section of named values: retrain the model")
    return section


def _build(cls: type, raw: Mapping[str, Any], key: str, source: str, prefix: str = "", **given: Any) -> Any:
    """``cls`` from the section ``raw[key]`` (named ``prefix + key`` in messages): every field
    without a default must be there; fields annotated ``np.ndarray`` become read-only float64
    arrays, ``float`` and ``int`` ones numbers. ``given``: fields computed by the caller."""
    section = _section(raw, key, source, prefix)
    values = dict(given)
    for f in dataclasses.fields(cls):
        if f.name in values:
            continue
        if f.name in section:
            values[f.name] = _convert(f.type, section[f.name])
        elif f.default is MISSING and f.default_factory is MISSING:
            raise _missing(source, f"{prefix}{key}.{f.name}")
    return cls(**values)


def _convert(annotation: str, value: Any) -> Any:
    if annotation == "np.ndarray":
        array = np.asarray(value, float)
        array.flags.writeable = False
        return array
    if annotation in ("float", "float | None"):
        return float(value)
    if annotation in ("int", "int | None"):
        return int(value)
    return value
