import json

import numpy as np
import pandas as pd
import pytest
import torch
from captum.attr import DeepLift
from torch import nn

from tests.cli import run
from virality.data.demo import demo_song, demo_tracks
from virality.explain.explanation import (
    baseline_choices,
    explain_song,
    explanation_text,
    resolve_baseline,
    summary_sentence,
)
from virality.explain.methods import (
    METHODS,
    AttributionMethod,
    IntegratedGradients,
    attribute,
    attribute_batch,
    attribute_frame,
    deeplift_rescale,
    method_key,
    top_drivers,
)
from virality.explain.views import sample_typical_tracks
from virality.features import FEATURE_NAMES, FEATURES
from virality.model.networks import InputTransform
from virality.model.prediction import load_predictor


def random_songs(n: int, seed: int) -> np.ndarray:
    """(n, 12) songs spread over the whole valid range of every characteristic."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(f.low, f.high, n) for f in FEATURES])
    for j, feature in enumerate(FEATURES):
        if feature.is_discrete:
            X[:, j] = np.round(X[:, j])
    return X


def true_gap(predictor, X, baseline=None) -> np.ndarray:
    """f(x) − f(x0) straight from the model, independent of the attribution code."""
    x0 = np.array([[(baseline or predictor.typical_song)[n] for n in FEATURE_NAMES]])
    return predictor.raw_scores(X) - predictor.raw_scores(x0)[0]


@pytest.fixture(scope="module")
def tiny(tiny_bundle):
    return load_predictor(tiny_bundle[0])


# ------------------------------------------------------------ a model with a known answer


class ScaledCopies(nn.Module):
    """A linear stand-in for ``InputTransform``: the same 13-column layout and
    ``output_groups``, each column a scaled copy of its characteristic."""

    output_groups = InputTransform.output_groups

    def __init__(self, scale: np.ndarray):
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.register_buffer("columns", torch.tensor(self.output_groups))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return raw[:, self.columns] * self.scale


class LinearPlusProduct(nn.Module):
    """g(z) = w·z + c · z_a · z_b: linear when ``c`` = 0."""

    def __init__(self, w: np.ndarray, c: float = 0.0, pair: tuple[int, int] = (0, 1)):
        super().__init__()
        self.linear = nn.Linear(len(w), 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor(w, dtype=torch.float32)[None, :])
            self.linear.bias.fill_(0.3)
        self.c, self.pair = c, pair

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)[:, 0] + self.c * z[:, self.pair[0]] * z[:, self.pair[1]]


class KnownModel(nn.Module):
    """A ``ViralityModel``-like object: transform, backbone, target scaling."""

    def __init__(self, transform, backbone, std=7.0, mean=40.0):
        super().__init__()
        self.transform, self.backbone = transform, backbone
        self.register_buffer("target_std", torch.tensor(std))
        self.register_buffer("target_mean", torch.tensor(mean))

    def forward(self, raw):
        return self.backbone(self.transform(raw)) * self.target_std + self.target_mean


class KnownPredictor:
    """Just what the attribution code uses from a ``Predictor``."""

    def __init__(self, model, typical):
        self.model, self.typical_song = model.eval(), typical

    def raw_scores(self, X):
        with torch.inference_mode():
            return self.model(torch.as_tensor(np.asarray(X), dtype=torch.float32)).double().numpy()


def scaled_song_space(X: np.ndarray) -> np.ndarray:
    """Songs rescaled so every characteristic is of order 1 (the linear model's inputs)."""
    return X / np.array([max(abs(f.high), 1.0) for f in FEATURES])


@pytest.fixture
def linear_case(typical_song):
    rng = np.random.default_rng(3)
    scale = 1 / np.array([max(abs(FEATURES[g].high), 1.0) for g in ScaledCopies.output_groups])
    scale *= rng.uniform(0.5, 2.0, len(scale))
    w = rng.normal(size=len(scale))
    model = KnownModel(ScaledCopies(scale), LinearPlusProduct(w))
    per_characteristic = np.zeros(len(FEATURE_NAMES))
    np.add.at(per_characteristic, list(ScaledCopies.output_groups), w * scale * 7.0)
    return KnownPredictor(model, typical_song), per_characteristic


@pytest.mark.parametrize("method", list(METHODS))
def test_linear_model_gives_weight_times_difference(linear_case, method):
    predictor, weight = linear_case
    X = random_songs(20, seed=4)
    x0 = np.array([predictor.typical_song[n] for n in FEATURE_NAMES])
    attr, delta = attribute(predictor, X, method=method, n_samples=8)
    np.testing.assert_allclose(attr, weight * (X - x0), atol=1e-3 * np.abs(weight * (X - x0)).max())
    assert np.abs(delta).max() < 1e-2


def test_fast_ig_gives_the_known_answer_too(linear_case):
    predictor, weight = linear_case
    X = random_songs(20, seed=5)
    x0 = np.array([predictor.typical_song[n] for n in FEATURE_NAMES])
    attr, _ = attribute_batch(predictor, X, n_steps=IntegratedGradients.batch_steps)
    np.testing.assert_allclose(attr, weight * (X - x0), atol=1e-3 * np.abs(weight * (X - x0)).max())


def test_deeplift_rescale_matches_captum_on_a_plain_mlp():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(13, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
    z, z0 = torch.randn(30, 13), torch.randn(1, 13)
    ours = deeplift_rescale(net, z, z0)
    theirs = DeepLift(net).attribute(z.clone().requires_grad_(), baselines=z0.expand_as(z))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(ours.sum(1).detach().numpy(), (net(z) - net(z0)).numpy(), atol=1e-4)


# ------------------------------------------------------------ completeness on real models


@pytest.mark.parametrize("which", ["bundled", "tiny"])
def test_ig_completeness_on_demo_and_random_songs(which, bundled, tiny):
    bundled = bundled if which == "bundled" else tiny
    X = np.vstack([demo_tracks()[list(FEATURE_NAMES)].to_numpy(), random_songs(200, seed=1)])
    attr, delta = attribute(bundled, X, method="ig")
    assert np.abs(attr.sum(1) - true_gap(bundled, X)).max() < METHODS["ig"].tolerance
    np.testing.assert_allclose(delta, attr.sum(1) - true_gap(bundled, X), atol=1e-3)


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("which", ["bundled", "tiny"])
def test_every_method_returns_12_numbers_within_its_tolerance(method, which, bundled, tiny):
    """Shapes and the reported delta on extreme songs; the stated tolerance on songs like
    real tracks (GradientShap's Monte Carlo error grows on extreme songs: the page then
    shows the delta)."""
    predictor = bundled if which == "bundled" else tiny
    baseline = demo_song("Demo — Phonk Sprint")
    extreme = random_songs(20, seed=2)
    attr, delta = attribute(predictor, extreme, baseline, method=method)
    assert attr.shape == (20, 12) and np.isfinite(attr).all()
    np.testing.assert_allclose(delta, attr.sum(1) - true_gap(predictor, extreme, baseline), atol=1e-3)
    typical = sample_typical_tracks(predictor.info.distribution, 40, seed=2).to_numpy()
    attr, delta = attribute(predictor, typical, baseline, method=method)
    assert attr.shape == (40, 12) and np.isfinite(attr).all()
    np.testing.assert_allclose(delta, attr.sum(1) - true_gap(predictor, typical, baseline), atol=1e-3)
    if METHODS[method].tolerance is not None:
        assert np.abs(delta).max() <= METHODS[method].tolerance


def test_fast_ig_equals_captum_ig(bundled):
    X = random_songs(50, seed=6)
    slow, slow_delta = attribute(bundled, X, method="ig", n_steps=16)
    fast, fast_delta = attribute_batch(bundled, X, method="ig", n_steps=16)
    np.testing.assert_allclose(fast, slow, atol=1e-4)
    np.testing.assert_allclose(fast_delta, slow_delta, atol=1e-3)


def test_batch_drivers_rank_like_the_full_ig(bundled):
    X = random_songs(300, seed=7)
    quick = top_drivers(attribute_frame(bundled, X))
    exact = top_drivers(pd.DataFrame(attribute(bundled, X, method="ig")[0], columns=list(FEATURE_NAMES)))
    assert (quick["up_1"] == exact["up_1"]).mean() > 0.9
    assert (quick["down_1"] == exact["down_1"]).mean() > 0.9


def test_top_drivers_are_the_largest_attributions(bundled):
    frame = attribute_frame(bundled, random_songs(30, seed=8))
    drivers = top_drivers(frame)
    for i, row in drivers.iterrows():
        if row["up_1"]:
            assert frame.loc[i, row["up_1"]] == frame.loc[i].max() > 0
        if row["down_1"]:
            assert frame.loc[i, row["down_1"]] == frame.loc[i].min() < 0


# ------------------------------------------------------------ one song, words, CLI


def test_explain_song_contract_and_score(bundled):
    song = demo_song("Demo — Summer Hook")
    result = explain_song(bundled, song, method="ig")
    payload = result.to_json()
    assert set(payload) == {"score", "baseline_score", "delta", "method", "attributions"}
    assert list(payload["attributions"]) == list(FEATURE_NAMES)
    assert all(set(v) == {"value", "baseline", "attribution"} for v in payload["attributions"].values())
    assert payload["score"] == round(bundled.predict_song(song).score, 3)
    assert payload["baseline_score"] == round(bundled.predict_song(bundled.typical_song).score, 3)
    total = sum(v["attribution"] for v in payload["attributions"].values())
    assert abs(total - (result.score - result.baseline_score)) < METHODS["ig"].tolerance


def test_summary_names_the_biggest_push(bundled):
    song = dict(bundled.typical_song, loudness=-25.0)
    result = explain_song(bundled, song)
    sentence = summary_sentence(result)
    biggest = result.table.loc[result.table["attribution"].abs().idxmax()]
    assert biggest["label"].lower() in sentence.lower() or "master" in sentence
    assert ("held back" in sentence) == (result.score < result.baseline_score)
    assert "Scores like the typical track" in summary_sentence(explain_song(bundled, bundled.typical_song))
    assert "Loudness" in explanation_text(result)


@pytest.mark.parametrize("bad", [{"tempi": 120}, {"tempo": "fast"}, {"tempo": 400}, "a song"])
def test_bad_song_input_names_the_problem(bundled, bad):
    with pytest.raises(ValueError, match="tempi|tempo|JSON object"):
        explain_song(bundled, bad)


CAPTUM_NAMES = ["IntegratedGradients", "DeepLift", "GradientShap", "FeatureAblation", "ShapleyValueSampling"]


@pytest.mark.parametrize("name", [*METHODS, *CAPTUM_NAMES, *(a for m in METHODS.values() for a in m.aliases),
                                  "Integrated Gradients", "Feature-Ablation"])
def test_every_method_the_cli_accepts_is_a_registered_class_with_its_tolerance(name):
    """Keys, Captum's class names and the aliases all reach one class of the registry; the
    CLI explains with it and reports a delta within that class's tolerance."""
    key = method_key(name)
    method = METHODS[key]
    assert issubclass(method, AttributionMethod) and method.key == key and method.label
    assert method.has_convergence_delta() == (method.tolerance is not None)
    done = run("explain", "--song", '{"energy": 0.3, "tempo": 140}', "--method", name, "--json")
    assert done.code == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["method"] == key
    assert method.tolerance is None or abs(payload["delta"]) <= method.tolerance


def test_the_registry_has_one_class_per_captum_method_with_its_settings():
    assert [m.__name__ for m in METHODS.values()] == CAPTUM_NAMES
    assert {k for k, m in METHODS.items() if m.tolerance is None} == {"ablation"}
    ig = METHODS["ig"]
    assert ig.batch_steps < ig.n_steps and ig.ranks_drivers and METHODS["deeplift"].ranks_drivers
    assert all(m.global_samples < m.n_samples for m in METHODS.values() if m.global_samples)


def test_methods_and_baselines_are_resolved_or_refused(bundled):
    assert method_key("IntegratedGradients") == "ig" and method_key("ShapleyValueSampling") == "shapley"
    with pytest.raises(ValueError, match="unknown method"):
        method_key("lime")
    assert resolve_baseline(bundled, "typical") == ("typical", bundled.typical_song)
    assert resolve_baseline(bundled, "demo — summer hook")[1] == demo_song("Demo — Summer Hook")
    label, song = resolve_baseline(bundled, '{"tempo": 90}')
    assert song["tempo"] == 90
    with pytest.raises(ValueError, match="not 'typical'"):
        resolve_baseline(bundled, "nothing like this")


def test_baseline_choices_offer_scored_songs_but_not_the_current_one(bundled):
    current = demo_song("Demo — Verse Heavy")
    other = dict(current, tempo=150.0)
    choices = baseline_choices(bundled, {"mine": other, "now": current}, exclude=current)
    assert "typical" in choices and "Demo — Summer Hook" in choices
    assert choices["mine"]["tempo"] == 150.0 and "now" not in choices


def test_cli_json_score_equals_the_score_command(tmp_path):
    song = demo_song("Demo — Festival Drop")
    table = pd.DataFrame([song]).rename(columns={"duration": "duration_ms"})
    table.to_csv(tmp_path / "in.csv", index=False)
    assert run("score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")).code == 0
    expected = float(pd.read_csv(tmp_path / "out.csv")["predicted_popularity"].iloc[0])
    done = run("explain", "--song", json.dumps(song), "--method", "deeplift", "--baseline",
                   "Demo — Summer Hook", "--json")
    assert done.code == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["score"] == expected and payload["method"] == "deeplift"
    assert payload["attributions"]["tempo"]["baseline"] == demo_song("Demo — Summer Hook")["tempo"]


def test_cli_table_and_clear_errors():
    done = run("explain", "--song", '{"energy": 0.2}')
    assert done.code == 0 and "Energy" in done.stdout and "not given" in done.stderr
    for args, words in [(("--song", '{"energy": 2}'), "energy"), (("--song", "not json"), "neither inline JSON"),
                        (("--song", "{}", "--method", "lime"), "unknown method")]:
        done = run("explain", *args)
        assert done.code == 2 and words in done.stderr and "Traceback" not in done.stderr


def test_the_page_is_told_when_delta_exceeds_the_tolerance(bundled):
    result = explain_song(bundled, demo_song("Demo — Summer Hook"), method="gradshap")
    assert not result.delta_exceeds_tolerance
    result.delta = METHODS["gradshap"].tolerance + 0.1
    assert result.delta_exceeds_tolerance
    ablation = explain_song(bundled, demo_song("Demo — Summer Hook"), method="ablation")
    assert ablation.tolerance is None and not ablation.delta_exceeds_tolerance


class AdditiveNet(nn.Module):
    """g(z) = Σ_c h_c(z_c): one small GELU network per transformed column (an additive
    architecture like the one the Model work may ship)."""

    def __init__(self, columns: int, hidden: int = 8, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.w1 = nn.Parameter(torch.randn(columns, hidden, generator=generator))
        self.b1 = nn.Parameter(torch.randn(columns, hidden, generator=generator))
        self.w2 = nn.Parameter(torch.randn(columns, hidden, generator=generator) / hidden**0.5)
        self.act = nn.GELU()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (self.act(z[:, :, None] * self.w1 + self.b1) * self.w2).sum((1, 2))


@pytest.mark.parametrize("method", list(METHODS))
def test_on_an_additive_model_every_method_finds_each_characteristics_own_effect(tiny, method):
    """Real quantile transform, additive backbone: the answer is f(x0 with only
    characteristic i from x) − f(x0), whatever the method."""
    model = KnownModel(tiny.model.transform, AdditiveNet(InputTransform.n_outputs), std=5.0, mean=50.0)
    predictor = KnownPredictor(model, tiny.typical_song)
    X = sample_typical_tracks(tiny.info.distribution, 10, seed=4).to_numpy()
    x0 = np.array([tiny.typical_song[n] for n in FEATURE_NAMES])
    expected = np.empty_like(X)
    for j in range(len(FEATURE_NAMES)):
        moved = np.repeat(x0[None, :], len(X), axis=0)
        moved[:, j] = X[:, j]
        expected[:, j] = predictor.raw_scores(moved) - predictor.raw_scores(x0[None, :])[0]
    attr, _ = attribute(predictor, X, method=method)
    atol = {"ig": 0.05, "gradshap": METHODS["gradshap"].tolerance}.get(method, 1e-3)
    np.testing.assert_allclose(attr, expected, atol=atol)


@pytest.mark.parametrize("method", list(METHODS))
def test_the_song_predict_starts_from_is_exactly_the_typical_track(bundled, method):
    """Predict opens on the typical track, so Explain's first view must say it scores like
    it: every attribution exactly 0 and the same score (a raw median between slider steps —
    instrumentalness 0.0000016 — once showed "0.00 vs typical 0.00: −0.2")."""
    from virality.features import default_song

    assert bundled.typical_song == default_song()
    result = explain_song(bundled, default_song(), method=method)
    assert result.score == result.baseline_score
    assert np.all(result.table["attribution"].to_numpy() == 0)


def test_sampling_methods_repeat_whatever_the_global_generators_hold(bundled):
    """GradientShap draws its path points from numpy's global generator: the method's own seed
    decides them, so a second process (or any other numpy user before it) gets the same answer."""
    X = np.array([[bundled.typical_song[n] for n in FEATURE_NAMES]]) * 0.9
    results = []
    for outside in (1, 2):
        np.random.seed(outside)
        torch.manual_seed(outside)
        results.append(attribute(bundled, X, method="gradshap", n_samples=32)[0])
    assert np.array_equal(results[0], results[1])
