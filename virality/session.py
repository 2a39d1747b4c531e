"""The current song as a link and as a file, for the app's address bar and its song download.

A link carries the song as query parameters named like the 12 characteristics, in Spotify
units (``?danceability=0.74&energy=0.64&key=5&…&duration=186000``); a song file is the JSON
``python -m virality explain --song`` reads. Both round-trip exactly: a value on its slider's
step is written with the step's decimals, any other value with all the digits it needs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from virality.features import BY_NAME, FEATURE_NAMES, FEATURES, Feature, check_value, default_song


def _decimals(feature: Feature) -> int:
    """Decimals of the slider step: 0.01 → 2, 0.1 → 1, 1 or 1000 → 0."""
    return max(0, -math.floor(math.log10(feature.step) + 1e-9))


def value_text(name: str, value: float) -> str:
    """One characteristic as URL text: ``"0.74"``, ``"-6.5"``, ``"5"``, ``"186000"``; a value
    off the slider's step keeps every digit (``"0.7431"``), so ``float(text) == value``."""
    value = float(value) + 0.0  # -0.0 → 0.0: no "-0" in a link
    text = f"{value:.{_decimals(BY_NAME[name])}f}"
    return text if float(text) == value else repr(value)


def song_to_query(song: Mapping[str, float]) -> dict[str, str]:
    """The 12 characteristics of ``song`` (Spotify units) → ``{name: text}``, model order."""
    return {name: value_text(name, song[name]) for name in FEATURE_NAMES}


def song_from_query(params: Mapping[str, str | list[str]]) -> tuple[dict[str, float], list[str]]:
    """A song from a link's query parameters: ``(song, problems)``.

    Only the 12 characteristic names are read (other parameters belong to someone else); a
    repeated name counts by its last value. A missing characteristic takes its typical value;
    so does a bad one, and ``problems`` names it and why, e.g. ``"tempo: 300 is outside the
    valid range 0–250 BPM"``. Length is milliseconds, or minutes:seconds like ``3:05``."""
    song, problems = default_song(), []
    for feature in FEATURES:
        raw = params.get(feature.name)
        if isinstance(raw, (list, tuple)):
            raw = raw[-1] if raw else None
        if raw is None or str(raw).strip() == "":
            continue
        try:
            song[feature.name] = check_value(feature.name, str(raw).strip())
        except ValueError as err:
            problems.append(str(err))
    return song, problems


def has_song(params: Mapping[str, object]) -> bool:
    """Whether a link's query parameters name any of the 12 characteristics."""
    return any(name in params for name in FEATURE_NAMES)


def song_link(base_url: str, song: Mapping[str, float]) -> str:
    """``base_url`` (no query; ``"http://host:8501"`` gets its ``/``) with ``song`` as its
    query: the address that reopens this song."""
    scheme, host, path, _, _ = urlsplit(base_url)
    return urlunsplit((scheme, host, path or "/", urlencode(song_to_query(song)), ""))


def song_to_json(song: Mapping[str, float]) -> str:
    """``song`` as the JSON ``--song`` reads (and ``parse_song_json`` reads back exactly):
    one line per characteristic, whole numbers without ``.0``, length in ms."""
    values = {name: json.loads(value_text(name, song[name])) for name in FEATURE_NAMES}
    return json.dumps(values, indent=2) + "\n"
