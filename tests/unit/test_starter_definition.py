"""The starter catalog file itself: sizes the issue asks for, valid links, and content the Rust JD needs."""

from __future__ import annotations

from collections import Counter

from jdgraph.catalog.importers.starter import load_starter_definition
from jdgraph.catalog.normalize import normalize_alias
from tests.rust_jd import RUST_SKILLS


def test_starter_catalog_sizes() -> None:
    cat = load_starter_definition()
    assert len(cat.roles) >= 40
    assert len(cat.skills) >= 400
    assert len(cat.dimensions) >= 25
    for role in cat.roles:
        assert len(role.aliases) >= 3, role.slug
        assert len(role.kras) >= 5, role.slug
        assert role.dimensions.essential, role.slug


def test_roles_span_tech_and_non_tech() -> None:
    slugs = {r.slug for r in load_starter_definition().roles}
    for needed in [
        "backend-engineer",
        "frontend-engineer",
        "mobile-engineer",
        "systems-software-engineer",
        "data-engineer",
        "ml-engineer",
        "mlops-engineer",
        "devops-engineer",
        "site-reliability-engineer",
        "security-engineer",
        "qa-engineer",
        "product-manager",
        "ux-designer",
        "account-executive",
        "accountant",
        "registered-nurse",
        "teacher",
        "logistics-coordinator",
        "customer-support-representative",
    ]:
        assert needed in slugs


def test_rust_jd_skills_are_catalogued_in_sensible_dimensions() -> None:
    skills = load_starter_definition().skills
    for slug in RUST_SKILLS:
        assert slug in skills
    assert "frontend-development" not in skills["rust"][1]
    assert skills["rust"][1] == ["systems-programming"]
    assert "software-testing" in skills["unit-testing"][1]


def test_no_alias_normalises_to_two_skills() -> None:
    owners: dict[str, set[str]] = {}
    for slug, (skill, _) in load_starter_definition().skills.items():
        for alias in [skill.name, *skill.aliases]:
            owners.setdefault(normalize_alias(alias), set()).add(slug)
    clashes = {k: v for k, v in owners.items() if len(v) > 1}
    assert clashes == {}


def test_some_titles_are_deliberately_shared() -> None:
    counts = Counter(normalize_alias(a) for r in load_starter_definition().roles for a in r.aliases)
    assert counts[normalize_alias("Software Engineer")] >= 2
    assert counts[normalize_alias("AI Engineer")] == 2
