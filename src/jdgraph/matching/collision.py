"""Whether the top role is contested: a title alias shared by several roles, a close call, or a title that points
at another role than the fused leader. A contested choice goes to the adjudicator."""

from __future__ import annotations

from typing import Any

from jdgraph.matching.roles import RoleSignal


def detect_collision(signals: list[RoleSignal], *, margin: float, title_disagreement: float) -> dict[str, Any]:
    """Why the top choice is contested, or {} when it is not."""
    if len(signals) < 2:
        return {}
    top = signals[0]
    shared = [s for s in signals[:6] if s.title_match_via in ("exact", "normalized")]
    if len(shared) >= 2:
        return {
            "kind": "shared_title",
            "alias": shared[0].title_alias,
            "roles": [s.slug for s in shared],
            "reason": f"title alias {shared[0].title_alias!r} is shared by {', '.join(s.slug for s in shared)}",
        }
    if top.score - signals[1].score < margin:
        return {
            "kind": "close_call",
            "roles": [top.slug, signals[1].slug],
            "reason": f"{top.slug} {top.score:.3f} and {signals[1].slug} {signals[1].score:.3f} are within "
            f"the collision margin {margin}",
        }
    alias_winner = max(signals, key=lambda s: (s.title_similarity, s.score))
    if alias_winner.title_similarity >= title_disagreement and alias_winner.slug != top.slug:
        return {
            "kind": "alias_disagrees",
            "alias": alias_winner.title_alias,
            "roles": [alias_winner.slug, top.slug],
            "reason": f"the title matches {alias_winner.slug} but KRAs and skills favour {top.slug}",
        }
    return {}
