import json

import pytest

from virality.features import (
    BY_NAME,
    FEATURE_NAMES,
    FEATURES,
    check_value,
    format_duration,
    load_song_arg,
    parse_duration,
    parse_key,
    parse_song,
)
from virality.model.bundle import ARTIFACTS_DIR

EXPECTED = ["danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
            "instrumentalness", "liveness", "valence", "tempo", "duration"]


def test_twelve_characteristics_in_model_order():
    assert list(FEATURE_NAMES) == EXPECTED


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_each_characteristic_is_complete_and_default_inside_range(feature):
    assert feature.label and feature.unit and len(feature.help) > 20
    assert feature.low < feature.high and feature.step > 0
    assert feature.low <= feature.default <= feature.high
    assert feature.snap(feature.default) == pytest.approx(feature.default)


def test_ranges_are_physical_not_training_min_max():
    assert (BY_NAME["loudness"].low, BY_NAME["loudness"].high) == (-60, 5)
    assert BY_NAME["tempo"].high == 250
    assert (BY_NAME["duration"].low, BY_NAME["duration"].high) == (10_000, 1_200_000)
    for name in ("danceability", "energy", "valence", "acousticness"):
        assert (BY_NAME[name].low, BY_NAME[name].high) == (0, 1)


def test_defaults_are_the_training_medians_of_the_bundle():
    medians = json.loads((ARTIFACTS_DIR / "metadata.json").read_text())["training_medians"]
    for feature in FEATURES:
        # the default is the median rounded to the slider step (key/mode: the median itself)
        assert abs(feature.default - medians[feature.name]) <= feature.step, feature.name


def test_duration_round_trip_in_minutes_seconds():
    assert format_duration(185_000) == "3:05"
    assert parse_duration("3:05") == 185_000
    for bad in ("3.05", "3:75", "abc", "", "3:"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize("text,expected", [("F#", 6), ("Gb", 6), ("F♯/G♭", 6), ("c", 0), ("B", 11), ("7", 7), (3, 3)])
def test_key_accepts_note_names_and_numbers(text, expected):
    assert parse_key(text) == expected


def test_key_and_mode_display_as_music_terms():
    assert BY_NAME["key"].format(6) == "F♯/G♭"
    assert BY_NAME["mode"].format(0) == "minor"
    assert BY_NAME["duration"].format(185_000) == "3:05"
    assert BY_NAME["tempo"].format(128) == "128 BPM"


@pytest.mark.parametrize("name,value,fragment", [
    ("tempo", "fast", "not a number"), ("loudness", 9, "outside the valid range"),
    ("key", 12, "outside"), ("key", 2.5, "whole number"), ("energy", float("nan"), "finite"),
    ("bpm", 120, "unknown characteristic"), ("mode", "sideways", "mode"),
])
def test_bad_values_are_named(name, value, fragment):
    with pytest.raises(ValueError, match=fragment):
        check_value(name, value)


def test_parse_song_fills_missing_with_defaults_and_names_them():
    song, filled = parse_song({"tempo": 128, "duration_ms": 200_000, "key": "A", "mode": "minor"})
    assert song["tempo"] == 128 and song["duration"] == 200_000 and song["key"] == 9 and song["mode"] == 0
    assert "tempo" not in filled and "energy" in filled and len(song) == 12


def test_song_argument_inline_file_and_features_output(tmp_path):
    assert load_song_arg('{"tempo": 100}')[0]["tempo"] == 100
    path = tmp_path / "song.json"
    path.write_text(json.dumps({"tempo": {"value": 90, "confidence": 0.9}}))
    assert load_song_arg(str(path))[0]["tempo"] == 90
    with pytest.raises(ValueError, match="not valid JSON"):
        load_song_arg("{tempo: 1")
    with pytest.raises(ValueError, match="neither inline JSON nor a readable file"):
        load_song_arg(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("text", ["3:05", "0:03:05", "3:05.5", " 2:30 ", "3:60", "1:60:00", "3:5:1:2", "-3:05"])
def test_one_duration_rule_for_a_cell_and_a_column(text):
    """``check_value`` (songs, controls) and ``check_rows`` (files) read a length the same way."""
    import pandas as pd

    from virality.data.validation import check_rows

    values, problems = check_rows(pd.DataFrame({"duration": [text]}), ("duration",))
    try:
        scalar = check_value("duration", text)
    except ValueError:
        assert len(problems) == 1 and values["duration"].isna().all()
    else:
        assert problems.empty and values["duration"].iloc[0] == scalar
