"""The IDX parser: round trips for every type and rank, and every malformed case."""
import gzip

import numpy as np
import pytest
from helpers import TYPE_CODES, idx_bytes, write_idx

from mindgan.data import IdxFormatError, read_idx


@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2), (0, 4)])
@pytest.mark.parametrize("gz", [False, True])
def test_round_trip(tmp_path, dtype, shape, gz):
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    else:
        array = (rng.standard_normal(shape) * 1e3).astype(dtype)
    # The name never says gzip: detection must come from the content.
    path = write_idx(tmp_path / "file.idx", array, gz=gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == shape
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # writable, not a view of a read-only buffer


def good_bytes():
    return idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


MALFORMED = {
    "empty": (b"", "empty file"),
    "bad magic": (b"\x01\x00" + good_bytes()[2:], "bad magic"),
    "unknown type": (b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"x", "unknown type code 0x07"),
    "short payload": (good_bytes()[:-5], "expected 24 bytes for shape (2, 3, 4), found 19"),
    "long payload": (good_bytes() + b"\x00" * 3, "expected 24 bytes for shape (2, 3, 4), found 27"),
    "short header": (b"\x00\x00\x08\x03\x00\x00", "declares 3 dimensions"),
    "tiny": (b"\x00\x00", "too short for an IDX header"),
    "truncated gzip": (gzip.compress(good_bytes())[:-12], "truncated gzip"),
    "corrupt gzip": (gzip.compress(good_bytes())[:10] + b"\xff" * 30, "corrupt gzip"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_input_names_file_and_problem(tmp_path, case):
    content, expected = MALFORMED[case]
    path = tmp_path / f"{case.replace(' ', '_')}.bin"
    path.write_bytes(content)
    with pytest.raises(IdxFormatError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert isinstance(info.value, ValueError)


def test_gzip_of_malformed_payload_still_reports_payload_problem(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(good_bytes()[:-1]))
    with pytest.raises(IdxFormatError, match="payload shorter"):
        read_idx(path)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")
