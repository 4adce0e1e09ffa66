"""glob_match is fnmatch.fnmatchcase without a compiled pattern: the two must agree on every
text and pattern, wildcards in the text included (policy patterns match ARNs with tokens)."""
from __future__ import annotations

import fnmatch

from hypothesis import given, settings, strategies as st

from dpguard.engine.checks import glob_match

ALPHABET = st.sampled_from(list("ab/:*?[]-!⟨⟩\n"))


@settings(max_examples=3000, deadline=None)
@given(st.text(ALPHABET, max_size=12), st.text(ALPHABET, max_size=8))
def test_agrees_with_fnmatchcase(text, pattern):
    assert glob_match(text, pattern) == fnmatch.fnmatchcase(text, pattern)


def test_arn_patterns():
    assert glob_match("⟨0:Data.Arn⟩/*", "⟨0:Data.Arn⟩/*")
    assert glob_match("⟨0:Data.Arn⟩/reports/x", "⟨0:Data.Arn⟩/*")
    assert not glob_match("⟨0:Data.Arn⟩", "⟨0:Data.Arn⟩/*")
    assert glob_match("arn:aws:s3:::logs/a/b", "arn:*:s3:::*/*/b")
    assert not glob_match("arn:aws:s3:::logs", "arn:*:s3:::*/*")
    assert not glob_match("aXa", "a*Xa*a")  # overlapping head and tail
