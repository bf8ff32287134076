"""Training examples from the review queue's decisions (``jdgraph models train ... --from-reviews``).

A reviewer who approves "Kafka" as a new skill, or "k8s" as an alias of Kubernetes, or rejects "At least 1" as a
skill, has labelled data about the very ads this installation reads. Those decisions become:

- for the span tagger: the proposal's evidence sentence, partially labelled: the proposed words as a span when
  approved, as "not a span" when rejected, every other token unlabelled (the sentence may hold skills nobody
  reviewed, which must not be taught as "not a skill");
- for the encoder: (name as the JD wrote it → the catalog skill it was approved as) pairs, beside ESCO's own.

The catalog is read by the caller (``cli/models.py``): this module gets plain decisions, so training never needs a
database and a test needs none either.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jdgraph.trained.data import Posting, Skill, Span
from jdgraph.trained.encoder import Pair

APPROVED = "approved"
REJECTED = "rejected"


@dataclass(frozen=True)
class ReviewDecision:
    """One decided proposal of a skill (``new_skill``) or of an alias (``new_alias``)."""

    item_id: int
    kind: str
    status: str
    name: str
    """The words the JD used (the proposed skill's name, or the proposed alias)."""
    evidence: str | None
    """The JD sentence that raised the proposal."""
    skill: str | None = None
    """The catalog skill's name the words were approved as (an alias approved, or a new skill approved as an alias
    of an existing one); None for a new skill approved as itself and for a rejection."""
    span_type: str = "knowledge"


def decisions_from_queue(items: Sequence[Mapping[str, Any]], skill_name: Callable[[str], str]) -> list[ReviewDecision]:
    """Decisions from review items (``ReviewItem.as_dict()``: id, kind, status, payload, decision).
    ``skill_name`` gives a catalog skill's name from its slug (an approval records the slug)."""
    out = []
    for item in items:
        kind, status = item["kind"], item["status"]
        if kind not in ("new_skill", "new_alias") or status not in (APPROVED, REJECTED):
            continue
        payload, changes = item.get("payload") or {}, item.get("decision") or {}
        slug = changes.get("skill") if status == APPROVED else None
        nature = str((payload.get("profile") or {}).get("nature") or "")
        out.append(
            ReviewDecision(
                item_id=int(item["id"]),
                kind=kind,
                status=status,
                name=str(payload.get("name") if kind == "new_skill" else payload.get("alias") or ""),
                evidence=payload.get("evidence"),
                skill=skill_name(str(slug)) if slug else None,
                # A practice ("load testing") is a skill in SkillSpan's scheme; a tool or concept is knowledge.
                span_type="skill" if nature == "PRACTICE" else "knowledge",
            )
        )
    return out


def _find(sentence: str, words: str) -> tuple[int, int] | None:
    """Where ``words`` stand in ``sentence`` as whole words (case-insensitive), first occurrence."""
    found = re.search(rf"(?<!\w){re.escape(words)}(?!\w)", sentence, re.I)
    return (found.start(), found.end()) if found else None


def review_postings(decisions: Sequence[ReviewDecision]) -> list[Posting]:
    """Partially labelled sentences for the tagger: one per decision whose words stand in its evidence."""
    out = []
    for d in decisions:
        if not d.evidence or d.status not in (APPROVED, REJECTED):
            continue
        where = _find(d.evidence, d.name)
        if where is None:
            continue  # renamed on approval, or evidence that no longer quotes the words: nothing to label
        span = Span(where[0], where[1], d.span_type)
        if d.status == APPROVED:
            out.append(Posting(f"review:{d.item_id}", "review", d.evidence, (span,), partial=True))
        else:
            out.append(Posting(f"review:{d.item_id}", "review", d.evidence, (), not_spans=(span,), partial=True))
    return out


def review_pairs(decisions: Sequence[ReviewDecision], skills: dict[str, Skill], *, seed: int) -> list[Pair]:
    """(JD words → catalog skill) pairs from approvals that name an existing skill; the hard negative is a random
    ESCO skill (the review queue says nothing about which skill the words were confused with)."""
    rng = random.Random(seed)
    pool = sorted(skills)
    out = []
    for d in decisions:
        if d.status != APPROVED or not d.skill or d.name.casefold() == d.skill.casefold():
            continue
        negative = skills[rng.choice(pool)] if pool else None
        out.append(
            Pair(
                d.name,
                d.skill,
                negative.preferred if negative else d.skill,
                f"review:{d.skill.casefold()}",
                negative.uri if negative else f"review:{d.skill.casefold()}",
                "skill-label",
            )
        )
    return out
