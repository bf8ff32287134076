"""Property tests of the input edge (issue 12): whatever bytes or text arrive, the result is text or a clear
InputError, never another exception; identities are stable and separate what they must."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jdgraph.context import Context
from jdgraph.errors import InputError
from jdgraph.graph.identity import batch_run_id, content_key, input_hash
from jdgraph.graph.text import MAX_JD_CHARS, check_field, check_input, normalise_text, sentences

DOC_HEADERS = st.sampled_from([b"", b"%PDF-1.4\n", b"PK\x03\x04", b"<html><body>", b"\xef\xbb\xbf"])


@settings(max_examples=400, deadline=None)
@given(head=DOC_HEADERS, body=st.binary(max_size=2000))
def test_any_bytes_become_text_or_a_clear_input_error(head: bytes, body: bytes) -> None:
    try:
        text = check_input(head + body)
    except InputError as exc:
        assert exc.message.startswith("the ")  # says what is wrong with the input, in words
        return
    assert isinstance(text, str) and text.strip() and len(text) <= MAX_JD_CHARS
    sentences(normalise_text(text))  # and what passes goes through the splitter


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_any_text_normalises_and_splits_without_error(text: str) -> None:
    try:
        checked = check_input(text)
    except InputError:
        return
    out = normalise_text(checked)
    for s in sentences(out):
        assert s.text.strip()


@given(st.text(max_size=600))
def test_a_field_is_itself_or_an_input_error_naming_it(value: str) -> None:
    try:
        assert check_field(value, "title") == value
    except InputError as exc:
        assert "title" in exc.message


@given(a=st.text(min_size=1), b=st.text(min_size=1), line_id=st.text(min_size=1, max_size=20))
def test_run_ids_are_stable_and_tell_inputs_apart(a: str, b: str, line_id: str) -> None:
    ctx = Context()
    key_a, key_b = content_key(a, None, None, ctx), content_key(b, None, None, ctx)
    assert batch_run_id(line_id, key_a) == batch_run_id(line_id, key_a)  # a rerun reaches the same run
    assert (batch_run_id(line_id, key_a) == batch_run_id(line_id, key_b)) == (a == b)  # an edited line is new
    assert (input_hash(a) == input_hash(b)) == (a == b)
    assert content_key(a, "t", None, ctx) != key_a  # options are part of the identity
