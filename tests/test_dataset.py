"""The .data format (round trip and every defect), the split by file, and training windows."""

import numpy as np
import pytest

from amadeus.data.dataset import (
    Piece,
    Windows,
    data_files,
    load_pieces,
    read_data,
    read_header,
    split_by_file,
    write_data,
)
from amadeus.errors import DatasetError


def piece(n, codec="prnn", first=0):
    dtype = np.uint8 if codec == "prnn" else np.uint16
    tokens = (np.arange(n) + first).astype(dtype) % 240
    controls = np.tile(np.arange(13, dtype=np.uint8), (n, 1))
    return Piece(tokens.astype(dtype), controls, codec, {"source": "x.mid"})


@pytest.mark.parametrize("codec", ["prnn", "magenta"])
def test_round_trip(tmp_path, codec):
    original = piece(500, codec)
    if codec == "magenta":
        original.tokens[-1] = 387
    write_data(tmp_path / "a.data", original)
    loaded = read_data(tmp_path / "a.data")
    assert loaded.codec == codec and loaded.meta["source"] == "x.mid"
    assert loaded.tokens.dtype == original.tokens.dtype
    assert np.array_equal(loaded.tokens, original.tokens)
    assert np.array_equal(loaded.controls, original.controls)
    assert read_header(tmp_path / "a.data")["events"] == 500
    assert [p.name for p in tmp_path.iterdir()] == ["a.data"]  # no temporary left


def test_defects_name_the_file(tmp_path):
    good = tmp_path / "good.data"
    write_data(good, piece(100))
    raw = good.read_bytes()
    cases = {
        "empty.data": b"",
        "pickle.data": b"\x80\x04\x95" + raw[3:],
        "truncated.data": raw[:-5],
        "padded.data": raw + b"\0",
        "header.data": raw[:12] + b"[" + raw[13:],
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(DatasetError, match=name):
            read_data(tmp_path / name)
    with pytest.raises(DatasetError, match="cannot read"):
        read_data(tmp_path / "missing.data")
    ten = piece(10)
    write_data(tmp_path / "remi.data", Piece(ten.tokens, ten.controls, "remi", {}))
    with pytest.raises(DatasetError, match="remi.data: unknown codec 'remi'"):
        read_data(tmp_path / "remi.data")


def test_split_is_deterministic_and_by_file(tmp_path):
    files = [tmp_path / f"piece{i}.data" for i in range(20)]
    train, val = split_by_file(files, 0.1)
    assert len(val) == 2 and not set(train) & set(val) and len(train) + len(val) == 20
    assert set(split_by_file(list(reversed(files)), 0.1)[1]) == set(val)  # order is irrelevant
    assert split_by_file(files[:1], 0.5) == (files[:1], [])  # one file stays for training


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        data_files(tmp_path / "nope")
    write_data(tmp_path / "a.data", piece(50, "prnn"))
    write_data(tmp_path / "b.data", piece(50, "magenta"))
    with pytest.raises(DatasetError, match="b.data: made with codec 'magenta'"):
        load_pieces(data_files(tmp_path))


def test_windows_stay_inside_pieces():
    windows = Windows([piece(30), piece(25, first=100)], window=10, stride=5)
    # range(0, 30 - 10, 5) -> 4 windows, range(0, 25 - 10, 5) -> 3 windows.
    assert len(windows) == 7
    events, compact = windows.gather(windows.starts)
    assert events.shape == (10, 7) and compact.shape == (10, 7, 13)
    assert events[:, 4].tolist() == list(range(100, 110))


def test_batches_are_a_function_of_step_and_rank():
    windows = Windows([piece(1000)], window=20, stride=10)
    a = windows.batch(step=5, batch_size=8, seed=1)[0]
    windows.batch(step=0, batch_size=8, seed=1)
    assert np.array_equal(a, windows.batch(step=5, batch_size=8, seed=1)[0])
    r0 = windows.batch(3, 8, 1, rank=0, world_size=2)[0][0]
    r1 = windows.batch(3, 8, 1, rank=1, world_size=2)[0][0]
    assert not set(r0.tolist()) & set(r1.tolist())  # disjoint windows on the two ranks
    epoch = {tuple(windows.batch(s, 8, 1)[0][0]) for s in range(windows.batches_per_epoch(8))}
    assert len(epoch) == windows.batches_per_epoch(8)


def test_fewer_windows_than_batch_is_an_error():
    windows = Windows([piece(30)], window=10, stride=10)
    with pytest.raises(DatasetError, match="fewer than the batch size"):
        windows.batch(0, batch_size=64, seed=0)
