from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jdgraph.catalog.normalize import normalize_alias, normalize_text, slugify

words = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8), min_size=1, max_size=4)


@given(st.text(max_size=40))
def test_normalize_alias_is_idempotent(text: str) -> None:
    once = normalize_alias(text)
    assert normalize_alias(once) == once


@given(st.text(max_size=60))
def test_normalize_text_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@given(
    words, st.lists(st.sampled_from(["", " ", "-", "_", "  ", " - ", ".", "/"]), min_size=4, max_size=4), st.booleans()
)
def test_case_hyphen_space_punctuation_variants_collapse(parts: list[str], seps: list[str], upper: bool) -> None:
    plain = "".join(parts)
    joined = "".join(p + seps[i % len(seps)] for i, p in enumerate(parts)).strip(" -_./")
    variant = joined.upper() if upper else joined.title()
    assert normalize_alias(variant) == normalize_alias(plain)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Multi-threading", "multithreading"),
        ("Multi Threading", "MULTITHREADING"),
        ("Node.js", "NodeJS"),
        ("node js", "Node.JS"),
        ("C Sharp", "C#"),
        ("Golang", "golang"),
        ("CI/CD", "ci cd"),
    ],
)
def test_known_variants_collapse(a: str, b: str) -> None:
    assert normalize_alias(a) == normalize_alias(b)


def test_symbol_named_skills_stay_distinct() -> None:
    keys = [normalize_alias(x) for x in ["C", "C#", "C++", ".NET", "R", "Go", "F#", "D"]]
    assert len(set(keys)) == len(keys)
    assert all(keys)


def test_accents_and_case_fold() -> None:
    assert normalize_alias("Café Manager") == normalize_alias("cafe manager")


def test_slugify_is_readable() -> None:
    assert slugify("C++ Developer") == "cplusplus-developer"
    assert slugify("Multi-threading") == "multi-threading"
