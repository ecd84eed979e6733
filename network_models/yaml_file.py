"""Reading a YAML file a person wrote: strictly, with errors that say where.

PyYAML's ``safe_load`` keeps the last of two equal keys without a word, so a drill file whose
second ``restoration_s`` expectation loosens the first, or a model whose line is given twice,
would pass. Here a repeated key in any mapping is an error naming both lines; a file that is
not UTF-8 text (a binary file given by mistake) is refused before YAML sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from network_models.errors import InputError

__all__ = ["read_yaml"]


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a key given twice in one mapping."""


def _mapping_without_repeats(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # the keys written in this mapping; merged ones (<<) may be overridden here, as YAML allows
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: construct_mapping says so in its own words
            break
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice (first on line {first}, again on line "
                f"{line}): expected each key once", key_node.start_mark)
        seen[key] = line
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats
)


def read_yaml(path: str | Path, *, expected: str, error: type[InputError] = InputError) -> Any:
    """The content of the YAML file ``path``; ``expected`` says what the file should be
    ("a drill YAML file"); problems raise ``error`` naming the file (and the line)."""
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"no such file: expected {expected}", source=source) from None
    except IsADirectoryError:
        raise error(f"is a folder: expected {expected}", source=source) from None
    except OSError as exc:
        raise error(f"cannot read it ({exc.strerror}): expected {expected}",
                    source=source) from None
    if b"\0" in data:
        raise error(f"not a text file (it holds NUL bytes): expected {expected}",
                    source=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start} cannot be decoded): expected {expected}",
                    source=source) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML ({_one_line(exc)})", source=source) from None


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(str(problem).split())
