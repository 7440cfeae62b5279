"""Matrix files: strict reading of .npy/.csv/.txt, raw float32 writing, atomic replacement."""

from __future__ import annotations

import os

import numpy as np
import pytest

from convfilter.errors import ConvFilterError
from convfilter.io.matrices import format_value, is_matrix_path, read_matrix, write_matrix


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2,0,1,4\n", [[2, 0, 1, 4]]),
        ("2 0 1 4", [[2, 0, 1, 4]]),
        ("1, 2\n3, 4\n", [[1, 2], [3, 4]]),
        ("1\t2\n\n3   4\n", [[1, 2], [3, 4]]),
        ("# written by numpy.savetxt\n1.5e0 -2\n.5 +3.\n", [[1.5, -2], [0.5, 3]]),
        ("\ufeff1,2\r\n3,4\r\n", [[1, 2], [3, 4]]),  # a BOM and CRLF, as spreadsheets write them
        ("1\n2\n3\n", [[1], [2], [3]]),  # one value per line is a column
    ],
)
def test_read_text(tmp_path, text, expected):
    path = tmp_path / "m.csv"
    path.write_bytes(text.encode("utf-8"))
    result = read_matrix(str(path))
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, np.array(expected, dtype=float))


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "no values"),
        ("# only a comment\n", "no values"),
        ("1,2\n3\n", "rows differ in length: line 1 has 2 values, line 2 has 1"),
        ("1,,2\n", "line 1 has an empty value"),
        ("a,b\n1,2\n", "value 'a' in line 1 is not a number"),
        ("1,2\n3,nan\n", "value 'nan' in line 2 is not finite"),
        ("1,-inf\n", "value '-inf' in line 1 is not finite"),
        ("1,1e400\n", "value '1e400' in line 1 is too large"),
        ("1;2;3\n", "value '1;2;3' in line 1 is not a number"),
        ("0x10\n", "value '0x10' in line 1 is not a number"),
        ("1_000\n", "value '1_000' in line 1 is not a number"),
    ],
)
def test_bad_text(tmp_path, text, message):
    path = tmp_path / "m.txt"
    path.write_text(text)
    with pytest.raises(ConvFilterError) as info:
        read_matrix(str(path))
    assert str(info.value) == f"{path}: {message}"


def test_not_utf8(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ConvFilterError) as info:
        read_matrix(str(path))
    assert str(info.value) == f"{path}: not a text file (it is not UTF-8)"


@pytest.mark.parametrize(
    "array,expected",
    [
        (np.array([2, 0, 1, 4], dtype=np.int64), [[2, 0, 1, 4]]),
        (np.array([[1.5, 2], [3, 4]], dtype=np.float32), [[1.5, 2], [3, 4]]),
        (np.array([[7]], dtype=np.uint8), [[7]]),
    ],
)
def test_read_npy(tmp_path, array, expected):
    path = tmp_path / "m.npy"
    np.save(path, array)
    np.testing.assert_array_equal(read_matrix(str(path)), np.array(expected, dtype=float))


@pytest.mark.parametrize(
    "array,message",
    [
        (np.zeros((2, 2, 2)), "is a 3-D array of shape (2, 2, 2); a matrix must be 1-D or 2-D"),
        (np.float64(3.0), "is a 0-D array of shape (); a matrix must be 1-D or 2-D"),
        (np.zeros((0, 3)), "is empty (shape (0, 3))"),
        (np.array([True, False]), "holds bool values, not real numbers"),
        (np.array(["a", "b"]), "holds <U1 values, not real numbers"),
        (np.array([1 + 2j]), "holds complex128 values, not real numbers"),
        (np.array([[1.0, 2.0], [np.nan, 4.0]]), "value at row 2, column 1 is not finite (nan)"),
    ],
)
def test_bad_npy(tmp_path, array, message):
    path = tmp_path / "m.npy"
    np.save(path, array)
    with pytest.raises(ConvFilterError) as info:
        read_matrix(str(path))
    assert str(info.value) == f"{path}: {message}"


def test_pickled_npy_is_refused(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConvFilterError) as info:
        read_matrix(str(path))
    assert str(info.value) == f"{path}: holds Python objects, which need pickle (refused)"


@pytest.mark.parametrize(
    "content,message",
    [
        (b"not numpy at all", "not a .npy file (no NumPy header)"),
        (b"", "not a .npy file (no NumPy header)"),
        (b"\x93NUMPY\x01\x00", "not a valid .npy file ("),
    ],
)
def test_garbage_npy(tmp_path, content, message):
    path = tmp_path / "m.npy"
    path.write_bytes(content)
    with pytest.raises(ConvFilterError) as info:
        read_matrix(str(path))
    assert str(info.value).startswith(f"{path}: {message}")


def test_missing_and_directory(tmp_path):
    with pytest.raises(ConvFilterError) as info:
        read_matrix(str(tmp_path / "nope.csv"))
    assert str(info.value) == f"{tmp_path / 'nope.csv'}: no such file"
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(ConvFilterError) as info:
        read_matrix(str(folder))
    assert str(info.value) == f"{folder}: is a directory, not a matrix file"


@pytest.mark.parametrize(
    "value,text",
    [
        (2.0, "2"),
        (-3.0, "-3"),
        (-0.0, "0"),
        (0.5, "0.5"),
        (np.float32(0.1), "0.1"),  # the shortest text that reads back as the same float32
        (1 / 3, "0.33333334"),
        (1e20, "1e+20"),
        (2.5e-7, "2.5e-07"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text
    assert np.float32(float(text)) == np.float32(value)


@pytest.mark.parametrize("ext,separator", [(".csv", ","), (".txt", " ")])
def test_write_text_round_trips_float32(tmp_path, ext, separator):
    values = np.random.default_rng(5).normal(0, 1000, (4, 3)).astype(np.float32)
    path = tmp_path / f"out{ext}"
    write_matrix(str(path), values)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(len(line.split(separator)) == 3 for line in lines)
    np.testing.assert_array_equal(read_matrix(str(path)).astype(np.float32), values)


def test_write_npy_is_float32(tmp_path):
    path = tmp_path / "out.npy"
    write_matrix(str(path), np.array([[1, 2.5]], dtype=np.float64))
    loaded = np.load(path, allow_pickle=False)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, [[1, 2.5]])


def test_write_replaces_atomically_and_keeps_permissions(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    write_matrix(str(path), np.array([[1.0, 2.0]]))
    assert path.read_text() == "1,2\n"
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_write_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "out.npy"
    path.write_bytes(b"precious")

    def broken_save(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(ConvFilterError) as info:
        write_matrix(str(path), np.ones((2, 2)))
    assert str(info.value) == f"{path}: cannot write ([Errno 28] No space left on device)"
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]


@pytest.mark.parametrize(
    "path,expected",
    [("a.npy", True), ("a.CSV", True), ("dir/a.txt", True), ("a.png", False), ("a", False), ("npy", False)],
)
def test_is_matrix_path(path, expected):
    assert is_matrix_path(path) is expected
