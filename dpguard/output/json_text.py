"""A JSON document as the writers print it: `json.dumps(valid_unicode(document), indent=2)`, byte
for byte, at the speed of json's C encoder (which the standard library uses only without indent;
its Python encoder took two thirds of the time of a JSON scan's report)."""
from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _string

from .text import valid_unicode

_SCALARS = (str, int, float, type(None))  # bool is an int


def dumps(document) -> str:
    text = _indented(document, 0)
    # json writes each character outside ASCII as an escape, and a lone surrogate as one of
    # \ud800-\udfff; valid_unicode replaces those. Without any such escape in the text, there was
    # nothing to replace.
    if "\\ud" in text:
        text = _indented(valid_unicode(document), 0)
    return text


def _indented(value, level: int) -> str:
    """`value` as json.dumps(value, indent=2) writes it at nesting `level`. ensure_ascii keeps
    newlines out of the strings, so a nested block can be indented by its line breaks."""
    if type(value) is str:
        return _string(value)
    if isinstance(value, dict):
        if not value or not all(type(k) is str for k in value):
            # empty, or keys json converts (numbers, None, booleans): the standard library's own way
            return json.dumps(value, indent=2).replace("\n", "\n" + "  " * level)
        if all(isinstance(v, _SCALARS) for v in value.values()):
            return _flat(value, level)
        pad = _pad(level + 1)
        return ("{" + pad + ("," + pad).join([_string(k) + ": " + _indented(v, level + 1) for k, v in value.items()])
                + _pad(level) + "}")
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if all(isinstance(v, _SCALARS) for v in value):
            return _flat(value, level)
        pad = _pad(level + 1)
        return "[" + pad + ("," + pad).join([_indented(v, level + 1) for v in value]) + _pad(level) + "]"
    return json.dumps(value)


def _flat(value, level: int) -> str:
    """A non-empty dict or list of scalars, by the C encoder with each item on its own line."""
    if level not in _FLAT:
        _FLAT[level] = json.JSONEncoder(separators=("," + _pad(level + 1), ": ")).encode
    text = _FLAT[level](value)
    return text[0] + _pad(level + 1) + text[1:-1] + _pad(level) + text[-1]


def _pad(level: int) -> str:
    return "\n" + "  " * level


_FLAT: dict = {}
