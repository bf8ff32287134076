"""Parsing of fields the reference run page shows: an explicit company line, cities, titles no list knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from jdgraph.graph.parse import _COMPANY_LINE, city_before, find_countries, find_title, job_places

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_an_explicit_company_line_is_read() -> None:
    text = "Data Engineer\nCompany: Acme Analytics GmbH\nLocation: Berlin, Germany\n"
    m = _COMPANY_LINE.search(text)
    assert m is not None and m.group("name") == "Acme Analytics GmbH"
    assert _COMPANY_LINE.search("Our company is great: we ship fast") is None


def test_a_city_right_before_its_country() -> None:
    for text, city in [
        ("Location: Berlin, Germany (hybrid)", "Berlin"),
        ("based in New York City, United States", "New York City"),
        ("Remote, Germany", None),
        ("anywhere in Germany", None),
    ]:
        [(country, _, pos)] = find_countries(text)
        assert city_before(text, pos) == city, (text, country)


def test_the_example_jds_list_of_countries_has_no_cities() -> None:
    # The README's own example: "Location : India, Pakistan, Nigeria, …" once gave each country the one before
    # it as its city ("India, Pakistan (PK, remote)").
    places = job_places((EXAMPLES / "rust-developer.txt").read_text(encoding="utf-8"))
    assert [code for _, code, _ in places] == ["IN", "PK", "NG", "KE", "EG", "GH", "BD", "TR", "MX"]
    assert [city for _, _, city in places] == [None] * 9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Location: India, Pakistan", [("IN", None), ("PK", None)]),
        ("Remote (US, Canada)", [("US", None), ("CA", None)]),
        ("Location: Bosnia and Herzegovina, Serbia", [("BA", None), ("RS", None)]),
        ("Location: Papua New Guinea, Fiji", [("PG", None), ("FJ", None)]),
        ("Location: EMEA, Germany", [("DE", None)]),
        ("Location: Berlin, Germany (hybrid)", [("DE", "Berlin")]),
        ("Location: London, UK or Berlin, Germany", [("GB", "London"), ("DE", "Berlin")]),
        ("Offices: São Paulo, Brazil; Lagos, Nigeria", [("BR", "São Paulo"), ("NG", "Lagos")]),
        ("Location: Mexico City, Mexico", [("MX", "Mexico City")]),
        ("Location: Remote, Germany; or Berlin, Germany", [("DE", "Berlin")]),
    ],
)
def test_a_list_of_countries_is_countries_and_a_city_before_its_country_is_a_city(
    text: str, expected: list[tuple[str, str | None]]
) -> None:
    assert [(code, city) for _, code, city in job_places(text)] == expected


def test_cities_are_read_where_the_countries_were_found() -> None:
    # A location line naming no country sends the search to the whole text: the cities must come from that text
    # too (they were read at the whole text's positions in the location lines).
    text = "Data Engineer\nLocation: flexible\nOur team sits in Berlin, Germany.\n"
    assert job_places(text) == [("Germany", "DE", "Berlin")]


def test_a_one_word_title_named_again_in_the_text() -> None:
    jd = "Beekeeper\nWe are hiring a seasonal beekeeper for our apiary.\nRequirements: 1 season."
    assert find_title(jd, set()) == "Beekeeper"
    assert find_title("Welcome\nWe love cake and our customers.", set()) is None
    assert find_title("Thanks for reading.\nThanks again.", set()) is None
