"""decide: an uncontested choice, the fused leader (or a new role when even the leader scores too low)."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from jdgraph.context import Context
from jdgraph.graph.nodes.common import elapsed_ms
from jdgraph.graph.schemas import Decision, RoleChoice, RoleSignal
from jdgraph.graph.state import State
from jdgraph.matching.roles import confidence, fits_no_role


def role_choice(s: RoleSignal) -> RoleChoice:
    """A role signal as the decision names it."""
    return RoleChoice(slug=s.slug, display_name=s.display_name, source_id=s.source_id, score=s.score)


def none_fits(decision: Decision, why: str) -> None:
    """The explicit "none of these fits" outcome: no chosen role; the closest one is kept as ``nearest_role`` so
    the reviewer of the new-role proposal sees where it sits, and nobody reads it as the answer."""
    nearest = decision.chosen_role
    decision.route = "new-role"
    decision.chosen_role = RoleChoice(slug=None)
    decision.nearest_role = nearest if nearest.slug else None
    decision.new_role_flag = f"{why}; nearest catalog role {nearest.slug}" if nearest.slug else why


def decide(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = runtime.context or Context()
    signals = state.role_signals
    if not signals:
        decision = Decision(
            chosen_role=RoleChoice(slug=None),
            route="new-role",
            is_new_role=True,
            reasoning="no catalog role has any signal for this JD",
            new_role_flag="no candidates",
        )
    else:
        top = signals[0]
        decision = Decision(
            chosen_role=role_choice(top),
            confidence=confidence(signals, ctx.scoring()),
            alternatives=[role_choice(s) for s in signals[1:6]],
            route="direct",
            decided_by="fusion",
            reasoning=f"{top.slug} leads the fused signals: title {top.title_similarity:.2f}, KRA "
            f"{top.kra_similarity:.2f}, skill overlap {top.skill_overlap:.2f}, centroid "
            f"{top.centroid_similarity:.2f}",
        )
        if fits_no_role(top, ctx.new_role_threshold):
            decision.is_new_role = True
            none_fits(decision, f"best fused score {top.score:.3f} is below the new-role threshold "
                      f"{ctx.new_role_threshold}")  # fmt: skip
    return {"decision": decision, "timings_ms": {"decide": elapsed_ms(t0)}}
