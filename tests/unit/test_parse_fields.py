"""Parsing of fields the reference run page shows: an explicit company line, cities, titles no list knows."""

from __future__ import annotations

from jdgraph.graph.parse import _COMPANY_LINE, city_before, find_countries, find_title


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


def test_a_one_word_title_named_again_in_the_text() -> None:
    jd = "Beekeeper\nWe are hiring a seasonal beekeeper for our apiary.\nRequirements: 1 season."
    assert find_title(jd, set()) == "Beekeeper"
    assert find_title("Welcome\nWe love cake and our customers.", set()) is None
    assert find_title("Thanks for reading.\nThanks again.", set()) is None
