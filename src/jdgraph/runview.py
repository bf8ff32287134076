"""What a run page shows, computed once for the terminal (``runs show``) and the web page (``jdgraph ui``).

The reference run page of the system we replace is the checklist: LLM cost per call, enrichment, signals, the chosen
role with its domain and reasoning, matched skills, dimensions and KRAs, what was captured for review, what persist
did, the stored JD text and timestamps. Its bugs are not repeated: every number is labelled, evidence is never cut
mid-word without an ellipsis, and repeated persistence lines are counted rather than listed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jdgraph.graph.schemas import ClassificationResult, PersistOutcome, ResolvedSkill

NODE_ORDER = ("parse", "extract", "match", "decide", "adjudicate", "enrich", "persist")


@dataclass
class RunPage:
    result: ClassificationResult
    jd_text: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def matched_kras(self) -> list[tuple[str, str | None, float]]:
        """(KRA, the JD sentence it matched, similarity) of the chosen role."""
        slug = self.result.decision.chosen_role.slug
        signal = next((s for s in self.result.role_signals if s.slug == slug), None)
        return [(k.kra, k.sentence, k.similarity) for k in signal.kra_matches] if signal else []

    @property
    def listed_skills(self) -> list[ResolvedSkill]:
        """The skills the run resolved: catalog skills and new-skill proposals."""
        return [s for s in self.result.skills if s.tag != "unmatched"]

    @property
    def unmatched_names(self) -> list[str]:
        """Phrases the tagger marked as asked for that no catalog skill matches and that are no name to propose
        ("solve complex problems"): shown apart, as a line of evidence, not as skills beside the resolved ones."""
        return [s.name for s in self.result.skills if s.tag == "unmatched"]

    @property
    def dimensions(self) -> list[str]:
        return list(dict.fromkeys(d.name for s in self.result.skills for d in s.dimensions))


def clip(text: str | None, width: int) -> str:
    """One line of at most ``width`` characters, cut at a word with an ellipsis (never silently)."""
    flat = " ".join((text or "").split())
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    if " " in cut[width // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


def evidence_window(skill: ResolvedSkill, width: int = 100) -> str:
    """The skill's evidence sentence, cut so the mention stays visible (the old page cut before the matched word)."""
    if not skill.evidence:
        return ""
    ev = skill.evidence[0]
    sentence = " ".join(ev.sentence.split())
    if len(sentence) <= width:
        return sentence
    at = sentence.casefold().find(skill.name.casefold())
    if at < 0 or at + len(skill.name) < width - 10:
        return clip(sentence, width)
    start = max(0, at - width // 3)
    return "…" + clip(sentence[start:], width - 1)


def evidence_segments(text: str, skills: list[ResolvedSkill]) -> list[tuple[str, str | None]]:
    """The JD text cut into (chunk, skill name or None): each skill's evidence mention is its own chunk, so a page
    can highlight it. Overlapping mentions keep the first."""
    spans = sorted(
        (ev.start, ev.end, s.canonical_name or s.name)
        for s in skills
        for ev in s.evidence
        if ev.start is not None and ev.end is not None and 0 <= ev.start < ev.end <= len(text)
    )
    out: list[tuple[str, str | None]] = []
    pos = 0
    for start, end, name in spans:
        if start < pos:
            continue
        if start > pos:
            out.append((text[pos:start], None))
        out.append((text[start:end], name))
        pos = end
    if pos < len(text):
        out.append((text[pos:], None))
    return out


def persistence_lines(outcomes: list[PersistOutcome], keep: int = 3) -> list[tuple[str, str, str]]:
    """(kind, item, outcome) with runs of the same kind and outcome beyond ``keep`` folded into one counted line
    (the old page printed 22 "already linked" lines)."""
    counts = Counter((o.kind, o.outcome) for o in outcomes)
    shown: Counter[tuple[str, str]] = Counter()
    lines: list[tuple[str, str, str]] = []
    for o in outcomes:
        key = (o.kind, o.outcome)
        if counts[key] > keep + 1:
            if shown[key] == 0:
                lines.append((o.kind, f"{counts[key]} items", o.outcome))
            shown[key] += 1
            continue
        lines.append((o.kind, o.item, o.outcome))
    return lines


def years_text(result: ClassificationResult) -> str:
    """ "3+", "2-5" or "" from the parsed experience."""
    exp = result.parsed.experience
    if exp is None or exp.min is None:
        return ""
    low = f"{exp.min:g}"
    return f"{low}–{exp.max:g}" if exp.max is not None else f"{low}+"


def timings_text(timings: dict[str, float]) -> str:
    ordered = sorted(timings.items(), key=lambda kv: (NODE_ORDER.index(kv[0]) if kv[0] in NODE_ORDER else 99, kv[0]))
    total = sum(timings.values())
    return " · ".join(f"{k} {v:,.0f} ms" for k, v in ordered) + f" · total {total:,.0f} ms"


def llm_cost_text(result: ClassificationResult) -> str:
    if not result.llm_calls:
        return "no LLM calls (deterministic implementations)"
    by_node: dict[str, float] = {}
    for c in result.llm_calls:
        by_node[c.node] = by_node.get(c.node, 0.0) + c.cost_usd
    return " · ".join(f"{k} ${v:.4f}" for k, v in by_node.items()) + f" · total ${result.llm_cost_usd:.4f}"


def signal_bars(result: ClassificationResult, top: int = 5) -> list[dict[str, Any]]:
    """The top role signals, each signal's share of the fused score (for the page's small chart)."""
    rows = []
    for s in result.role_signals[:top]:
        rows.append(
            {
                "slug": s.slug,
                "name": s.display_name,
                "score": s.score,
                "parts": {
                    "title": s.title_similarity,
                    "KRA": s.kra_similarity,
                    "skills": s.skill_overlap,
                    "centroid": s.centroid_similarity,
                },
            }
        )
    return rows
