"""What-if search: validity, constraints, honesty when unreachable, the CLI contract."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from tests.cli import run
from virality.features import BY_NAME, CONTINUOUS, FEATURE_NAMES, default_song
from virality.model.prediction import load_predictor
from virality.whatif.search import MIN_EXTRA, PRODUCER_CHOICES, search


@pytest.fixture(scope="module")
def tiny(tiny_bundle):
    """The tiny synthetic-data model (popularity rises with danceability and energy)."""
    return load_predictor(tiny_bundle[0])


def rescored(predictor, suggestion) -> float:
    return predictor.predict_song(suggestion.song).score


def check_suggestion(predictor, result, allowed, original, max_changes, bounds=None):
    """Every invariant a suggestion must keep, whatever the model."""
    bounds = bounds or {}
    dist = predictor.info.distribution
    for s in result.suggestions:
        score = rescored(predictor, s)
        assert score == pytest.approx(s.score, abs=1e-4)
        assert s.reached == (score >= result.target)
        assert 1 <= len(s.changes) <= max_changes
        for j, name in enumerate(FEATURE_NAMES):
            feature = BY_NAME[name]
            if name not in s.changes:
                assert s.song[name] == original[name]  # bit for bit
                continue
            old, new = s.changes[name]
            assert name in allowed and old == original[name] and new == s.song[name] != old
            assert feature.snap(new) == new
            if feature.is_discrete:
                assert new == int(new) and 0 <= new <= (11 if name == "key" else 1)
            else:
                assert dist.low[j] - feature.step <= new <= dist.high[j] + feature.step
            lo, hi = bounds.get(name, (None, None))
            assert lo is None or new >= lo
            assert hi is None or new <= hi


def test_reachable_gain_gives_k_valid_diverse_suggestions(tiny, typical_song):
    result = search(tiny, typical_song, gain=1, k=4)
    assert result.reached
    assert len(result.suggestions) == 4
    assert all(s.reached for s in result.suggestions)
    assert all(rescored(tiny, s) >= result.target for s in result.suggestions)
    check_suggestion(tiny, result, PRODUCER_CHOICES, typical_song, 3)
    assert len({tuple(sorted(s.changes)) for s in result.suggestions}) == 4


def test_only_allowed_characteristics_change_within_bounds(tiny, typical_song):
    allowed = ["danceability", "tempo", "key"]
    bounds = {"danceability": (None, 0.85), "tempo": (100.0, 140.0)}
    result = search(tiny, typical_song, gain=2, vary=allowed, bounds=bounds, max_changes=2, k=4)
    assert result.suggestions
    check_suggestion(tiny, result, allowed, typical_song, 2, bounds)


def test_max_changes_one_gives_single_edits(tiny, typical_song):
    result = search(tiny, typical_song, gain=2, max_changes=1, k=3)
    assert result.suggestions
    assert all(len(s.changes) == 1 for s in result.suggestions)
    check_suggestion(tiny, result, PRODUCER_CHOICES, typical_song, 1)


def test_key_and_mode_stay_discrete(tiny, typical_song):
    result = search(tiny, typical_song, gain=0.5, vary=["key", "mode"], max_changes=2, k=4)
    check_suggestion(tiny, result, ["key", "mode"], typical_song, 2)


def test_unreachable_target_returns_honest_best_effort(tiny, typical_song):
    result = search(tiny, typical_song, target=100, vary=["tempo"], k=2)
    assert not result.reached
    assert "could not be reached" in result.message
    assert result.suggestions and not any(s.reached for s in result.suggestions)
    best = result.suggestions[0]
    assert best.score > result.original_score  # it did find a gain
    assert best.gain == pytest.approx(best.score - result.original_score)
    assert best.score == max(s.score for s in result.suggestions)
    check_suggestion(tiny, result, ["tempo"], typical_song, 3)


def test_already_at_target_needs_no_edit(tiny, typical_song):
    result = search(tiny, typical_song, target=0.0)
    assert result.reached and not result.suggestions
    assert "already" in result.message


def test_bundled_model_suggestions_are_valid_and_distinct_ideas(bundled):
    song = dict(default_song(), tempo=98.0, energy=0.55, loudness=-9.0)
    result = search(bundled, song, gain=4, k=4)
    assert result.reached
    check_suggestion(bundled, result, PRODUCER_CHOICES, parse(song), 3)
    assert all(s.reached for s in result.suggestions)
    scale = bundled.quantile_scale
    for a, b in itertools.permutations(result.suggestions, 2):
        assert set(a.changes) != set(b.changes)
        if set(a.changes) < set(b.changes):  # b adds to a's edit: the extra must be substantial
            extra = [FEATURE_NAMES.index(n) for n in set(b.changes) - set(a.changes)]
            x0, xb = (np.array([[s[n] for n in FEATURE_NAMES]]) for s in (result.song, b.song))
            moved = np.abs(scale.to_quantile(xb) - scale.to_quantile(x0))[0]
            assert sum(moved[CONTINUOUS.index(j)] for j in extra if j in CONTINUOUS) >= MIN_EXTRA


def parse(song):
    from virality.features import parse_song

    return parse_song(song)[0]


@pytest.mark.parametrize("kwargs, words", [
    (dict(gain=5, target=60), "either a target"),
    (dict(target=120), "between 0 and 100"),
    (dict(gain=5, vary=["tempo", "bpm"]), "'bpm'"),
    (dict(gain=5, bounds={"tempo": (150, 100)}), "tempo: lower bound"),
    (dict(gain=5, max_changes=0), "max changes"),
])
def test_bad_requests_name_the_problem(tiny, typical_song, kwargs, words):
    with pytest.raises(ValueError, match=words):
        search(tiny, typical_song, **kwargs)


def test_bounds_that_exclude_every_value_leave_nothing_to_change(tiny, typical_song):
    result = search(tiny, typical_song, gain=5, vary=["tempo"], bounds={"tempo": (300.0, 400.0)})
    assert not result.reached and not result.suggestions
    assert "Nothing may change" in result.message


def test_cli_json_contract(bundled, typical_song):
    done = run("whatif", "--song", json.dumps(typical_song), "--gain", "3", "--vary", "loudness,tempo,key",
                   "--max-changes", "2", "-k", "3", "--json")
    assert done.code == 0, done.stderr
    payload = json.loads(done.stdout)
    assert set(payload) == {"original_score", "target", "reached", "suggestions"}
    assert payload["reached"] is True
    assert payload["target"] == pytest.approx(payload["original_score"] + 3, abs=1e-3)
    assert 1 <= len(payload["suggestions"]) <= 3
    for s in payload["suggestions"]:
        assert set(s) == {"song", "score", "low", "high", "changes"}
        assert list(s["song"]) == list(FEATURE_NAMES)
        assert set(s["changes"]) <= {"loudness", "tempo", "key"} and 1 <= len(s["changes"]) <= 2
        for name, (old, new) in s["changes"].items():
            assert old == typical_song[name] and new == s["song"][name]
        assert bundled.predict_song(s["song"]).score >= payload["target"] - 1e-3


def test_cli_text_and_errors(typical_song):
    done = run("whatif", "--song", json.dumps(typical_song), "--target", "100", "--vary", "tempo")
    assert done.code == 1  # valid input, target out of reach: best effort shown
    assert "could not be reached" in done.stdout
    bad = run("whatif", "--song", json.dumps(typical_song), "--gain", "3", "--vary", "tempo,bpm")
    assert bad.code == 2
    assert bad.stderr.startswith("error:") and "'bpm'" in bad.stderr and "Traceback" not in bad.stderr


def test_random_requests_keep_every_invariant(tiny):
    """Seeded random songs (some outside the range of real tracks), allowed sets, limits and
    budgets: whatever the search returns keeps every rule."""
    rng = np.random.default_rng(7)
    shown = reached = 0
    for _ in range(12):
        song = {f.name: f.snap(rng.uniform(f.low, f.high)) if not f.is_discrete else float(rng.integers(0, 12 if
                f.name == "key" else 2)) for f in map(BY_NAME.get, FEATURE_NAMES)}
        allowed = list(rng.choice(FEATURE_NAMES, size=int(rng.integers(1, 13)), replace=False))
        bounds = {}
        for name in allowed:
            feature = BY_NAME[name]
            if not feature.is_discrete and rng.random() < 0.3:
                lo, hi = sorted(rng.uniform(feature.low, feature.high, 2))
                bounds[name] = (float(lo), float(hi))
        max_changes = int(rng.integers(1, 5))
        result = search(tiny, song, gain=float(rng.uniform(0.5, 15)), vary=allowed, bounds=bounds,
                        max_changes=max_changes, k=int(rng.integers(1, 6)))
        check_suggestion(tiny, result, allowed, parse(song), max_changes, bounds)
        assert result.reached == any(s.reached for s in result.suggestions)
        if result.reached:
            assert all(s.reached for s in result.suggestions)
        else:
            assert not result.suggestions or "could not be reached" in result.message
        shown += len(result.suggestions)
        reached += result.reached
    assert shown >= 12 and 0 < reached < 12  # the cases exercised both outcomes


class _NoGradients(torch.nn.Module):
    """A model outside autograd (like a tree ensemble would be): same scores, no gradients."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.transform = model, model.transform

    def forward(self, raw):
        with torch.no_grad():
            return self.inner(raw).detach()


def test_search_works_without_gradients(tiny, typical_song):
    from virality.model.prediction import Predictor

    blind = Predictor(_NoGradients(tiny.model), tiny.info)
    result = search(blind, typical_song, gain=1, k=3)
    assert result.reached and result.suggestions
    check_suggestion(blind, result, PRODUCER_CHOICES, typical_song, 3)
    assert all(tiny.predict_song(s.song).score >= result.target for s in result.suggestions)
