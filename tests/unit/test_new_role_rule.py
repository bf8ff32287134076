"""When the leader is too weak to be the JD's role: a low fused score, unless the JD's title is word for word one of
the leader's titles (a "Barista" ad with a thin description is a barista, not a role the catalog lacks)."""

from __future__ import annotations

from jdgraph.catalog.models import MatchVia
from jdgraph.matching.roles import RoleSignal, fits_no_role


def _leader(score: float, via: MatchVia) -> RoleSignal:
    return RoleSignal(slug="barista", display_name="barista", score=score, title_match_via=via)


def test_a_weak_leader_fits_no_role_unless_the_title_names_it() -> None:
    assert fits_no_role(_leader(0.40, "embedding"), 0.42)
    assert not fits_no_role(_leader(0.40, "normalized"), 0.42)
    assert not fits_no_role(_leader(0.43, "embedding"), 0.42)
    assert not fits_no_role(_leader(0.43, "none"), 0.42)
