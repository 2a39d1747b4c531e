from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import synthetic_tracks
from virality.data import tracks as data_module
from virality.data.reading import DataError
from virality.data.tracks import group_kfold, group_split, load_tracks
from virality.data.validation import check_rows


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "t.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_one_row_per_track_with_median_popularity(synthetic_csv):
    raw = pd.read_csv(synthetic_csv)
    loaded = load_tracks(synthetic_csv)
    assert len(loaded.tracks) == raw["track_id"].nunique() < len(raw)
    duplicated = raw[raw.duplicated("track_id", keep=False)]
    some_id = duplicated["track_id"].iloc[0]
    expected = duplicated.loc[duplicated["track_id"] == some_id, "popularity"].median()
    assert loaded.tracks.set_index("track_id").loc[some_id, "popularity"] == expected
    assert loaded.n_bad_rows == 0


def test_missing_column_is_named(tmp_path):
    path = write(tmp_path, synthetic_tracks(20, duplicates=0).drop(columns=["tempo"]))
    with pytest.raises(DataError, match="missing column.*tempo"):
        load_tracks(path)


def test_text_in_number_column_drops_and_counts_the_row(tmp_path):
    frame = synthetic_tracks(20, duplicates=0).astype(object)
    frame.loc[3, "energy"] = "loud"
    frame.loc[5, "tempo"] = 900
    loaded = load_tracks(write(tmp_path, frame))
    assert loaded.n_bad_rows == 2 and len(loaded.tracks) == 18
    assert set(zip(loaded.problems["row"], loaded.problems["column"])) == {(5, "energy"), (7, "tempo")}


def test_empty_file_header_only_and_binary(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_tracks(empty)
    header = tmp_path / "header.csv"
    header.write_text(",".join(synthetic_tracks(5, duplicates=0).columns) + "\n")
    with pytest.raises(DataError, match="no rows"):
        load_tracks(header)
    binary = tmp_path / "song.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(DataError, match="binary"):
        load_tracks(binary)
    with pytest.raises(DataError, match="no such file"):
        load_tracks(tmp_path / "nope.csv")


def test_file_that_is_not_csv(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('just some "words\nwith a broken "quote" and more\n')
    with pytest.raises(DataError):
        load_tracks(path)


def test_semicolon_separated_latin1_is_read(tmp_path):
    frame = synthetic_tracks(10, duplicates=0)
    frame["track_name"] = "Café Señor"
    path = tmp_path / "semi.csv"
    frame.to_csv(path, index=False, sep=";", encoding="latin-1")
    assert len(load_tracks(path).tracks) == 10


def test_check_rows_lists_every_bad_cell_with_spreadsheet_row():
    frame = pd.DataFrame({"tempo": ["120", "", "fast", "300"], "key": ["F#", "11", "H", "2"]})
    values, problems = check_rows(frame, ("tempo", "key"))
    assert values["tempo"].tolist()[0] == 120 and values["key"].tolist()[:2] == [6, 11]
    assert problems[["row", "column", "why"]].values.tolist() == [
        [3, "tempo", "missing"], [4, "key", "not a number"], [4, "tempo", "not a number"],
        [5, "tempo", "outside the valid range 0–250 BPM"]]


def test_group_split_never_shares_a_track():
    ids = np.repeat(np.arange(100), 3)
    parts = group_split(ids, (0.7, 0.15, 0.15), seed=1)
    assert sum(len(p) for p in parts) == len(ids)
    sets = [set(ids[p]) for p in parts]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert [len(s) for s in sets] == [70, 15, 15]


def test_group_kfold_each_track_tested_once():
    ids = np.repeat(np.arange(50), 2)
    folds = group_kfold(ids, 5, seed=0)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(ids)))
    for train, test in folds:
        assert not set(ids[train]) & set(ids[test])


class FakeGdown:
    def __init__(self, payload: bytes | None):
        self.payload, self.calls = payload, []

    def download(self, id, output, quiet):  # noqa: A002 - gdown's own argument name
        self.calls.append(id)
        if self.payload is None:
            raise RuntimeError("Cannot retrieve the public link of the file.")
        Path(output).write_bytes(self.payload)
        return output


def test_download_saves_and_validates(tmp_path, monkeypatch):
    fake = FakeGdown(synthetic_tracks(30, duplicates=0).to_csv(index=False).encode())
    monkeypatch.setitem(__import__("sys").modules, "gdown", fake)
    path, loaded = data_module.download(tmp_path / "data")
    assert fake.calls == [data_module.DRIVE_FILE_ID] and path.exists() and len(loaded.tracks) == 30


def test_download_with_wrong_schema_or_failure_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gdown", FakeGdown(b"a,b\n1,2\n"))
    with pytest.raises(DataError, match="does not fit the tracks schema.*missing column"):
        data_module.download(tmp_path / "d1")
    monkeypatch.setitem(sys.modules, "gdown", FakeGdown(None))
    with pytest.raises(DataError, match="download of Google Drive file .* failed"):
        data_module.download(tmp_path / "d2")
