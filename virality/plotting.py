"""What every figure and sentence shares: one palette, signed points, the unit an axis is drawn in.

No plotly here (the figures in ``model/plots.py``, ``explain/plots.py``, ``whatif/plots.py`` and
``batch/plots.py`` import it), so plain-words text can use ``signed`` without drawing anything.
"""

from __future__ import annotations

from virality.features import BY_NAME, KEY_NAMES, MODE_NAMES

# One palette (GitHub's Primer colours): the app's theme colour (.streamlit/config.toml) is BLUE.
BLUE = "#1f6feb"
GREEN = "#2da44e"  # pushes a score up
RED = "#cf222e"  # holds a score back
ORANGE = "#d1670f"  # the second of two things compared
GREY = "#8b949e"
LIGHT = "#d0d7de"
TEXT = "#1f2328"
BAND = "rgba(31,111,235,0.15)"  # BLUE at 15 %: an interval drawn as a band
PANEL = "#f6f8fa"  # a note's background
CHANGED_CELL = "#d3f9d8"  # a table cell a suggestion changed
FILLED_CELL = "#fff4d6"  # a table row with values filled in for the user
MS_PER_MINUTE = 60_000.0
FIT_MEANING = ("how much this song's characteristics resemble songs that trend on TikTok, compared with the "
               "wider Spotify catalogue — not a promise of going viral")


def signed(points: float, decimals: int = 1) -> str:
    """``+2.1``, ``−0.4``, ``0.0``: points with a sign (a real minus), never "−0.0"."""
    text = f"{points:+.{decimals}f}"
    if float(text) == 0:
        return f"{0:.{decimals}f}"
    return text.replace("-", "−")


# The two things a song is scored on (``virality.explain.methods.TARGETS``, ``whatif.search.TARGET_KINDS``)
TARGET_NAMES = {"popularity": "popularity score", "fit": "TikTok fit"}  # what the app's selectors say
TARGET_UNITS = {"popularity": "points", "fit": "percentage points of fit"}  # an attribution's unit, on screen
TARGET_AXES = {"popularity": "popularity (points)", "fit": "TikTok fit (%)"}  # an axis of the target itself


def fit_text(percent: float) -> str:
    """TikTok fit (0–100 %) for the screen: ``"62%"``. Whole percent: the fit is calibrated to
    within a few points, so a decimal would claim more than it knows."""
    return f"{percent:.0f}%"


def axis_unit(name: str) -> str:
    """The unit a characteristic is drawn in on a figure's axis: length in minutes (it is
    stored in ms), every other characteristic in its own unit."""
    feature = BY_NAME[name]
    return "minutes" if feature.kind == "duration" else feature.unit


def axis_values(name: str, values):
    """Values (array, Series or scalar, Spotify units) → (values in ``axis_unit``, the axis
    title "Label (unit)")."""
    feature = BY_NAME[name]
    scale = MS_PER_MINUTE if feature.kind == "duration" else 1.0
    return values / scale, f"{feature.label} ({axis_unit(name)})"


def axis_ticks(name: str, narrow: bool = False) -> dict:
    """Tick settings for a characteristic's axis (plotly ``xaxis``/``yaxis`` keys): key as note
    names ("F♯" for F♯/G♭; a ``narrow`` panel names only the seven natural notes C D E F G A B),
    mode as its two values (minor, major); ``{}`` for the others."""
    feature = BY_NAME[name]
    if feature.kind == "key":
        keys = [k for k in range(12) if not narrow or "/" not in KEY_NAMES[k]]
        return {"tickmode": "array", "tickvals": keys, "ticktext": [KEY_NAMES[k].split("/")[0] for k in keys]}
    if feature.kind == "mode":
        return {"tickmode": "array", "tickvals": [0, 1], "ticktext": [MODE_NAMES[0], MODE_NAMES[1]],
                "range": [-0.5, 1.5]}
    return {}
