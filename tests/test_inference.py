"""The scoring path (``virality.model.inference``) gives the modules' outputs for every
architecture, depth and member count, and for the committed bundle."""

import numpy as np
import pytest
import torch

from virality.features import FEATURES
from virality.model.fit import FitConfig, TikTokFit, fit_plan
from virality.model.inference import model_plan, run_chunked
from virality.model.networks import ARCHITECTURES, Preprocessing, TabMNetwork, ViralityModel

SHAPES = {
    "mlp_ensemble": [{"hidden": (), "n_members": 2}, {"hidden": (16,), "n_members": 3}, {"hidden": (32, 32), "n_members": 2},
                     {"hidden": (8, 16, 8), "n_members": 4}],
    "tabm": [{"d_embed": 4, "hidden": (), "n_members": 2}, {"d_embed": 4, "hidden": (32,), "n_members": 2}, {"d_embed": 8, "hidden": (64, 64), "n_members": 8}],
    "additive": [{"hidden": (8, 8), "pair_hidden": (8, 8), "pairs": [[0, 1]], "n_members": 2}],
}
SHAPES["blend"] = [{"parts": [{"arch": "mlp_ensemble", "arch_kwargs": SHAPES["mlp_ensemble"][2]},
                              {"arch": "tabm", "arch_kwargs": SHAPES["tabm"][1]}]}]


def songs(n: int, seed: int) -> np.ndarray:
    """(n, 12) random songs inside every characteristic's valid range."""
    rng = np.random.default_rng(seed)
    low, high = np.array([f.low for f in FEATURES]), np.array([f.high for f in FEATURES])
    X = rng.uniform(low, high, (n, len(FEATURES)))
    discrete = [j for j, f in enumerate(FEATURES) if f.is_discrete]
    X[:, discrete] = np.round(X[:, discrete])
    return X


def module_outputs(module: torch.nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.as_tensor(X, dtype=torch.float32)).double().numpy()


@pytest.mark.parametrize("arch,kwargs", [(a, k) for a in sorted(ARCHITECTURES) for k in SHAPES[a]])
def test_the_scoring_path_gives_the_modules_outputs(arch, kwargs):
    torch.manual_seed(0)
    X = songs(3000, seed=1)
    model = ViralityModel(Preprocessing.fit(X, X[:, 0] * 100), arch, kwargs).eval()
    expected = module_outputs(model, X)
    fast = run_chunked(model_plan(model), X, chunk=1024)
    assert fast.shape == expected.shape
    assert np.abs(fast - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())
    assert np.std(expected) > 0  # a model that outputs a constant would prove nothing


@pytest.mark.parametrize("folds,members", [(1, 2), (3, 4)])
def test_the_fit_scoring_path_gives_the_modules_percent(folds, members):
    torch.manual_seed(0)
    X = songs(3000, seed=2)
    fit = TikTokFit(Preprocessing.fit(X, X[:, 0]), FitConfig(folds=folds, n_members=members, hidden=(16, 16)),
                    platt=(0.8, -0.3)).eval()
    expected = module_outputs(fit, X)
    fast = run_chunked(fit_plan(fit), X, chunk=1024)
    assert np.abs(fast - expected).max() < 1e-4
    assert 0 < expected.min() and expected.max() < 100 and np.std(expected) > 0


def test_a_fit_of_tabm_parts_is_scored_through_its_modules():
    """``FitConfig.arch = "tabm"`` (an experiment of benchmarks/fit.py) builds TabM parts; the
    scoring path has no plan for them, so it runs the model itself."""
    torch.manual_seed(0)
    X = songs(500, seed=3)
    fit = TikTokFit(Preprocessing.fit(X, X[:, 0]), FitConfig(arch="tabm", d_embed=4, hidden=(8,), n_members=2)).eval()
    assert fit_plan(fit) is fit
    assert all(isinstance(part.backbone, TabMNetwork) for part in fit.parts)
    percent = run_chunked(fit_plan(fit), X, chunk=128)
    assert np.allclose(percent, module_outputs(fit, X)) and np.std(percent) > 0


def test_the_bundle_scores_as_its_modules_do(bundled):
    X = songs(5000, seed=3)
    assert np.abs(bundled.raw_scores(X) - module_outputs(bundled.model, X)).max() < 1e-4
    assert np.abs(bundled.fit_percent(X) - module_outputs(bundled.fit, X)).max() < 1e-4


def test_a_plan_is_built_from_the_weights_and_follows_no_later_training():
    torch.manual_seed(0)
    X = songs(200, seed=4)
    model = ViralityModel(Preprocessing.fit(X, X[:, 0]), "mlp_ensemble", SHAPES["mlp_ensemble"][0]).eval()
    plan = model_plan(model)
    before = run_chunked(plan, X, chunk=64)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(2.0)
    assert np.allclose(run_chunked(plan, X, chunk=64), before)
    assert not np.allclose(run_chunked(model_plan(model), X, chunk=64), before)
