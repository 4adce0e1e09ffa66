"""The JSON and SARIF reports are json.dumps(valid_unicode(document), indent=2), byte for byte,
though written by json_text.dumps: for any document, nested or flat, empty containers, keys json
converts (numbers, booleans, None), NaN, text outside ASCII and lone surrogates included."""
from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from dpguard.output.json_text import dumps
from dpguard.output.text import valid_unicode

CHARACTERS = st.characters() | st.sampled_from(["\ud800", "\udfff", "\\", "\n"])  # lone halves too
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(CHARACTERS, max_size=8)
KEYS = st.text(CHARACTERS, max_size=5) | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                         | st.dictionaries(KEYS, inner, max_size=4), max_leaves=25)


def standard(document) -> str:
    return json.dumps(valid_unicode(document), indent=2)


@settings(max_examples=1000, deadline=None)
@given(DOCUMENTS)
def test_same_bytes_as_json_dumps(document):
    assert dumps(document) == standard(document)


def test_surrogates_and_their_look_alikes():
    for document in ({"a": "\ud800", "b": [1, {"c": "\U0001f600"}]},  # lone half; a pair as escapes
                     {"\udfff": {"x": []}},  # in a key
                     ["\\ud800", {}],  # the text of an escape, not a surrogate
                     "\ud83d\ude00",  # two halves side by side: replaced, not joined
                     {"findings": [{"rule_id": "DP-X", "clause": 1, "acknowledgment": None}]}):
        assert dumps(document) == standard(document)
    assert "\ufffd" in json.loads(dumps({"a": "\ud800"}))["a"]
