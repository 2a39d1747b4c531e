"""One song explained in words and numbers: the ``Explanation`` of ``explain --json``, its
sentence, and the baselines a user may explain against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from virality.explain.methods import METHODS, attribute, method_key, song_array
from virality.features import BY_NAME, FEATURE_NAMES, FEATURES, load_song_arg, parse_song
from virality.model.prediction import Predictor
from virality.plotting import TARGET_UNITS, signed


@dataclass
class Explanation:
    """One song explained against one baseline.

    ``table``: one row per characteristic (model order) with ``feature``, ``label``,
    ``value``, ``baseline``, ``value_text``, ``baseline_text``, ``attribution`` (points).
    ``score``/``baseline_score``: the predictor's 0–100 scores; ``delta``: Σ attributions −
    (f(song) − f(baseline)); ``tolerance``: the method's allowed |delta| (None: not additive);
    ``target``: what is explained, ``"popularity"`` (points) or ``"fit"`` (TikTok fit, % and
    percentage points).
    """

    method: str
    baseline_label: str
    score: float
    baseline_score: float
    delta: float
    tolerance: float | None
    table: pd.DataFrame
    target: str = "popularity"

    @property
    def delta_exceeds_tolerance(self) -> bool:
        return self.tolerance is not None and abs(self.delta) > self.tolerance

    def to_json(self) -> dict[str, Any]:
        """The ``python -m virality explain --json`` contract."""
        return {"score": round(self.score, 3), "baseline_score": round(self.baseline_score, 3),
                "delta": round(self.delta, 4), "method": self.method,
                "attributions": {row.feature: {"value": row.value, "baseline": row.baseline,
                                               "attribution": round(row.attribution, 4)}
                                 for row in self.table.itertuples()}}


def explain_song(predictor: Predictor, song: Mapping[str, Any], baseline: Mapping[str, Any] | None = None,
                 method: str = "ig", baseline_label: str = "typical", target: str = "popularity",
                 **options) -> Explanation:
    """Explain one song's ``target`` (``"popularity"``, or ``"fit"``: TikTok fit in %; validated
    with ``parse_song``, missing characteristics take their default) against ``baseline``
    (default: the typical track) with ``method``."""
    method = method_key(method)
    values, _ = parse_song(song)
    reference = parse_song(baseline)[0] if baseline is not None else predictor.typical_song
    attr, delta = attribute(predictor, song_array(values), reference, method=method, target=target, **options)
    both = np.vstack([song_array(values), song_array(reference)])
    scores = predictor.target_scores(both, target)
    table = pd.DataFrame({
        "feature": list(FEATURE_NAMES), "label": [f.label for f in FEATURES],
        "value": [values[n] for n in FEATURE_NAMES], "baseline": [reference[n] for n in FEATURE_NAMES],
        "value_text": [BY_NAME[n].format(values[n]) for n in FEATURE_NAMES],
        "baseline_text": [BY_NAME[n].format(reference[n]) for n in FEATURE_NAMES],
        "attribution": attr[0],
    })
    return Explanation(method, baseline_label, float(scores[0]), float(scores[1]), float(delta[0]),
                       METHODS[method].tolerance, table, target)


def _phrase(row) -> str:
    """``"lower energy"``, ``"faster tempo"``, ``"the key of A"``, ``"the minor mode"`` (vs the baseline)."""
    feature = BY_NAME[row.feature]
    higher = row.value > row.baseline
    if feature.kind == "key":
        return f"the key of {row.value_text}"
    if feature.kind == "mode":
        return f"the {row.value_text} mode"
    words = {"tempo": ("faster tempo", "slower tempo"), "loudness": ("louder master", "quieter master"),
             "duration": ("longer track", "shorter track")}
    default = (f"higher {feature.label.lower()}", f"lower {feature.label.lower()}")
    return words.get(feature.name, default)[0 if higher else 1]


def summary_sentence(explanation: Explanation, minimum: float = 0.25) -> str:
    """One sentence in plain words: what mostly moves the score, and what pulls the other way
    (characteristics moving it by less than ``minimum`` points are left out; the units are the
    target's, ``TARGET_UNITS``)."""
    table = explanation.table
    total = explanation.score - explanation.baseline_score
    if table["attribution"].abs().max() < minimum:
        name = "the typical track" if explanation.baseline_label == "typical" else explanation.baseline_label
        return (f"Scores like {name}: no characteristic moves it by {minimum} "
                f"{TARGET_UNITS[explanation.target]} or more.")
    main_up = total >= 0
    main = table[table["attribution"] > minimum] if main_up else table[table["attribution"] < -minimum]
    other = table[table["attribution"] < -minimum] if main_up else table[table["attribution"] > minimum]
    main = main.reindex(main["attribution"].abs().sort_values(ascending=False).index).head(2)
    other = other.reindex(other["attribution"].abs().sort_values(ascending=False).index).head(1)
    parts = " and ".join(f"{_phrase(r)} ({signed(r.attribution)})" for r in main.itertuples())
    sentence = f"Mostly {'lifted by' if main_up else 'held back by'} {parts}" if parts else "Close to the baseline"
    if len(other):
        r = next(other.itertuples())
        sentence += f"; {_phrase(r)} {'helps' if r.attribution > 0 else 'holds it back'} ({signed(r.attribution)})"
    return sentence[0].upper() + sentence[1:] + "."


def resolve_baseline(predictor: Predictor, spec: str | None) -> tuple[str, dict[str, float]]:
    """``--baseline``: ``typical`` (training medians), a demo track's title, or a song as
    inline JSON / a JSON file → ``(label, song)``."""
    from virality.data.demo import demo_tracks

    text = (spec or "typical").strip()
    if text.lower() == "typical":
        return "typical", predictor.typical_song
    titles = demo_tracks()["title"].tolist()
    match = [t for t in titles if t.lower() == text.lower()]
    if match:
        from virality.data.demo import demo_song

        return match[0], demo_song(match[0])
    from pathlib import Path

    if not text.startswith("{") and not Path(text).is_file():
        raise ValueError(f"--baseline {text!r} is not 'typical', a demo title ({'; '.join(titles)}), "
                         "inline song JSON or a JSON file")
    try:
        return "your baseline song", load_song_arg(text)[0]
    except ValueError as err:
        raise ValueError(f"--baseline: {err}") from None


def baseline_choices(predictor: Predictor, scored: Mapping[str, Mapping[str, float]] | None = None,
                     exclude: Mapping[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Baselines a user can pick, label → song: the typical track, every demo track, then
    the songs they scored this session (except ``exclude``, usually the current song)."""
    from virality.data.demo import demo_tracks

    choices = {"typical": predictor.typical_song}
    for row in demo_tracks().itertuples(index=False):
        choices[row.title] = {n: float(getattr(row, n)) for n in FEATURE_NAMES}
    for label, song in (scored or {}).items():
        values = {n: float(song[n]) for n in FEATURE_NAMES}
        if exclude is None or values != {n: float(exclude[n]) for n in FEATURE_NAMES}:
            choices.setdefault(label, values)
    return choices


def explanation_text(explanation: Explanation) -> str:
    """A readable table for the terminal."""
    what = "TikTok fit (%)" if explanation.target == "fit" else "score"
    lines = [f"{what} {explanation.score:.1f} vs {explanation.baseline_label} {explanation.baseline_score:.1f} "
             f"({METHODS[explanation.method].label}, delta {explanation.delta:+.3f} points)",
             f"{'characteristic':18s} {'this song':>12s} {'baseline':>12s} {'points':>8s}"]
    ordered = explanation.table.reindex(explanation.table["attribution"].abs().sort_values(ascending=False).index)
    for row in ordered.itertuples():
        lines.append(f"{row.label:18s} {row.value_text:>12s} {row.baseline_text:>12s} {row.attribution:+8.2f}")
    lines.append(summary_sentence(explanation))
    return "\n".join(lines)
