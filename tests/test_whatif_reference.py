"""The exhaustive what-if reference finds known optima of synthetic score functions, and the
search lands close to the reference's optimum on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.whatif_reference import closest, lower_bound_of_k, set_optima
from virality.features import BY_NAME, CONTINUOUS, FEATURE_NAMES
from virality.model.prediction import load_predictor
from virality.whatif.search import PRODUCER_CHOICES, _problem, search

DANCE, ENERGY, TEMPO = (FEATURE_NAMES.index(n) for n in ("danceability", "energy", "tempo"))


@pytest.fixture(scope="module")
def tiny(tiny_bundle):
    return load_predictor(tiny_bundle[0])


def song_array(song: dict) -> np.ndarray:
    return np.array([song[n] for n in FEATURE_NAMES], float)


def moves(scale, x0: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n, 10) signed moves in quantile units."""
    return scale.to_quantile(X) - scale.to_quantile(x0[None])


def reference_for(predictor, x0, score, target, allowed=(DANCE, ENERGY, TEMPO), max_changes=3, **kwargs):
    problem = _problem(predictor.quantile_scale, x0, target, [FEATURE_NAMES[j] for j in allowed], {}, max_changes, 4)
    return set_optima(score, predictor.quantile_scale, x0, target, list(allowed), problem.box_low,
                      problem.box_high, max_changes, **kwargs)


def test_linear_score_optimum_is_the_steepest_single_change(tiny, typical_song):
    """score = 50 + 20·Δdanceability + 10·Δenergy + 5·Δtempo (quantile units): reaching +2
    costs 2/20 = 0.1 moving danceability alone (energy alone: 0.2), give or take the sliders'
    steps; each single change found is exactly the first slider step that reaches the target."""
    scale = tiny.quantile_scale
    x0 = song_array(typical_song)
    slopes = np.zeros(len(CONTINUOUS))
    for j, slope in ((DANCE, 20.0), (ENERGY, 10.0), (TEMPO, 5.0)):
        slopes[CONTINUOUS.index(j)] = slope

    def score(X):
        return 50 + moves(scale, x0, X) @ slopes

    optima = reference_for(tiny, x0, score, 52.0)
    best = min(optima.values(), key=lambda o: o.distance)
    # on the sliders' steps a single change overshoots a little, so the exact answer per set is
    # the first step that reaches +2; the continuous optimum (0.1) bounds every set from below
    for column, ideal in ((DANCE, 0.1), (ENERGY, 0.2)):
        feature = BY_NAME[FEATURE_NAMES[column]]
        steps = np.round(x0[column] + feature.step * np.arange(1, 200), 6)
        steps = steps[steps <= min(feature.high, scale.high[column])]
        edits = np.repeat(x0[None], len(steps), 0)
        edits[:, column] = steps
        first = edits[np.argmax(score(edits) >= 52.0)]
        assert optima[(column,)].distance == pytest.approx(moves(scale, x0, first[None]).sum(), abs=1e-9)
        assert ideal - 1e-9 <= optima[(column,)].distance <= ideal + 0.04
    assert DANCE in best.columns and 0.1 - 1e-9 <= best.distance <= optima[(DANCE,)].distance
    assert score(best.song[None])[0] >= 52.0
    assert all(o.distance >= best.distance for o in optima.values())
    assert closest(optima) == best.distance
    four = sorted(o.distance for o in optima.values())[:4]
    assert lower_bound_of_k(optima, 4) == pytest.approx(np.mean(four))


def test_saturating_score_optimum_needs_a_pair(tiny, typical_song):
    """Each of danceability and energy gains 30 points per quantile unit for its first 0.1 only
    (3 points at most): +4 needs both, at least 4/30 ≈ 0.133 in all; no single change reaches."""
    scale = tiny.quantile_scale
    x0 = song_array(typical_song)
    d, e = CONTINUOUS.index(DANCE), CONTINUOUS.index(ENERGY)

    def score(X):
        m = moves(scale, x0, X)
        return 50 + 30 * np.clip(m[:, d], 0, 0.1) + 30 * np.clip(m[:, e], 0, 0.1)

    optima = reference_for(tiny, x0, score, 54.0, allowed=(DANCE, ENERGY))
    assert (DANCE,) not in optima and (ENERGY,) not in optima
    assert optima[(DANCE, ENERGY)].distance == pytest.approx(4 / 30, abs=0.01)
    assert closest(optima) == optima[(DANCE, ENERGY)].distance
    assert np.isnan(lower_bound_of_k(optima, 2))  # only one set can reach


def test_unreachable_target_has_no_optimum(tiny, typical_song):
    x0 = song_array(typical_song)
    optima = reference_for(tiny, x0, lambda X: np.full(len(X), 10.0), 50.0)
    assert optima == {} and closest(optima) == np.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_search_is_near_the_reference_optimum_on_the_tiny_model(tiny, seed):
    """The search's closest suggestion is within 10 % (+0.01) of the closest in-distribution
    edit the brute-force grid finds, on seeded songs of the tiny model's training range."""
    rng = np.random.default_rng(seed)
    song = {n: BY_NAME[n].snap(v) for n, v in zip(FEATURE_NAMES, tiny.typical_song.values())}
    for name in PRODUCER_CHOICES:
        f = BY_NAME[name]
        lo, hi = np.quantile([f.low, f.high], [0.3, 0.7])
        song[name] = f.snap(rng.uniform(lo, hi))
    result = search(tiny, song, gain=3, k=4)
    assert result.reached
    x0 = song_array(result.song)
    allowed = tuple(FEATURE_NAMES.index(n) for n in PRODUCER_CHOICES)
    optima = reference_for(tiny, x0, lambda X: np.clip(tiny.raw_scores(X), 0, 100), result.target + 1e-3,
                           allowed=allowed, levels=21,
                           keep=lambda X: ~tiny.is_out_of_distribution(X))
    ours = min(s.distance for s in result.suggestions)
    assert ours <= 1.1 * closest(optima) + 0.01
