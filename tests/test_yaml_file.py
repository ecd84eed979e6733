"""``read_yaml``: the one reader of YAML a person wrote refuses what PyYAML lets pass."""

from __future__ import annotations

import pytest

from network_models.errors import InputError, ModelError
from network_models.yaml_file import read_yaml


def _read(tmp_path, text: str | bytes, name: str = "f.yaml"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path, read_yaml(path, expected="a test file")


def test_a_plain_file_reads_as_safe_load_would(tmp_path):
    _, data = _read(tmp_path, "name: x\nexpect:\n  restoration_s: {max: 10}\nlist: [1, 2.5]\n")
    assert data == {"name": "x", "expect": {"restoration_s": {"max": 10}}, "list": [1, 2.5]}


def test_a_top_level_key_given_twice_names_both_lines(tmp_path):
    with pytest.raises(InputError) as err:
        _read(tmp_path, "name: a\nduration_min: 20\nname: b\n")
    text = str(err.value)
    assert str(tmp_path / "f.yaml") in text
    assert "'name' given twice" in text and "line 1" in text and "line 3" in text


def test_a_nested_key_given_twice_is_refused_where_it_loosens_a_bound(tmp_path):
    text = "expect:\n  restoration_s: {max: 10}\n  restoration_s: {max: 100000}\n"
    with pytest.raises(InputError) as err:
        _read(tmp_path, text)
    assert "'restoration_s' given twice" in str(err.value)
    assert "line 2" in str(err.value) and "line 3" in str(err.value)


def test_a_key_twice_inside_a_flow_mapping_is_refused(tmp_path):
    with pytest.raises(InputError, match="'max' given twice"):
        _read(tmp_path, "expect:\n  restoration_s: {max: 10, max: 99}\n")


def test_merge_keys_may_be_overridden_as_yaml_allows(tmp_path):
    _, data = _read(tmp_path, "base: &b {kind: clear, at_min: 1}\n"
                              "event: {<<: *b, at_min: 5}\n")
    assert data["event"] == {"kind": "clear", "at_min": 5}


def test_a_binary_file_is_refused_before_yaml_sees_it(tmp_path):
    with pytest.raises(InputError, match="not a text file"):
        _read(tmp_path, b"\x7fELF\x02\x01\x01\x00\x00\x00name: x\n")


def test_a_file_that_is_not_utf8_is_refused_naming_the_byte(tmp_path):
    with pytest.raises(InputError) as err:
        _read(tmp_path, "name: 九科\n".encode("gb18030"))
    assert "not UTF-8" in str(err.value) and "byte 6" in str(err.value)


def test_a_folder_and_a_missing_file_say_what_was_expected(tmp_path):
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(InputError, match=r"is a folder: expected a test file"):
        read_yaml(tmp_path / "d.yaml", expected="a test file")
    with pytest.raises(InputError, match=r"no such file: expected a test file"):
        read_yaml(tmp_path / "absent.yaml", expected="a test file")


def test_invalid_yaml_says_where_in_one_line(tmp_path):
    with pytest.raises(InputError) as err:
        _read(tmp_path, "name: [unclosed\nother: 1\n")
    assert "not valid YAML" in str(err.value) and "line " in str(err.value)
    assert "\n" not in str(err.value)


def test_the_error_class_is_the_callers(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("a: 1\na: 2\n", encoding="utf-8")
    with pytest.raises(ModelError):
        read_yaml(path, expected="a grid file", error=ModelError)
