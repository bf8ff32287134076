"""The rules that settle a contested role choice when no adjudicator model is configured (or its answer fails)."""

from __future__ import annotations

from typing import Any

from jdgraph.matching.roles import RoleSignal


def adjudicate_by_rules(signals: list[RoleSignal], collision: dict[str, Any]) -> tuple[RoleSignal, str]:
    """Deterministic adjudication among contested candidates.

    - A title alias shared by several roles says nothing about which of them is meant, so among those roles the
      one whose responsibilities, skills and profile fit the JD best wins (KRA similarity + skill overlap +
      centroid similarity), then the fused score, then the slug.
    - A close call or a title that disagrees with the description is already weighed by the fused score, which
      sees every signal; re-ranking on a subset of them chose worse on real ads (hahu-dev: 16 of 52 contested
      ads right against 18 for the fused leader), so the leader stays and the contest lowers its confidence.
    """
    contested = [s for s in signals if s.slug in set(collision.get("roles", []))] or signals[:2]
    if collision.get("kind") != "shared_title":
        best = max(contested, key=lambda s: (s.score, [-ord(c) for c in s.slug]))
        return best, (
            f"rules: {collision.get('reason', 'contested')}; kept {best.slug}, the fused leader "
            f"({best.score:.3f}) among {', '.join(s.slug for s in contested)}"
        )

    def description_fit(s: RoleSignal) -> float:
        return round(s.kra_similarity + s.skill_overlap + s.centroid_similarity, 4)

    best = max(contested, key=lambda s: (description_fit(s), s.score, [-ord(c) for c in s.slug]))
    return best, (
        f"rules: {collision.get('reason', 'contested')}; chose {best.slug} on KRA+skill+profile fit "
        f"{description_fit(best):.3f} among {', '.join(s.slug for s in contested)}"
    )
