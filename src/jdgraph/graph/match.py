"""match: canonical skills and role signals.

Skills: each extracted name resolves exact → normalised → embedding alias; unresolved names from sources
that can name new things (list patterns, the LLM) become proposals with a derived profile. Roles: three
signals as in the reference system's stage 3 — title-alias match, KRA↔sentence similarity (top-3 pairs per
role), weighted skill overlap — plus centroid similarity, fused as

    score = 0.40 · title + 0.25 · KRA + 0.25 · skill overlap + 0.10 · centroid

and ranked by (score, title, KRA, overlap) with the slug as the last tie-break, so equal scores never tie.
"""

from __future__ import annotations

import math

import numpy as np

from jdgraph.catalog.models import SkillMatch
from jdgraph.catalog.normalize import normalize_alias
from jdgraph.catalog.queries import Catalog
from jdgraph.graph.extract import SkillFinding
from jdgraph.graph.schemas import DimensionOut, ResolvedSkill, RoleSignal, SkillEvidence, SkillProfile
from jdgraph.graph.text import Sentence

WEIGHTS = {"title": 0.40, "kra": 0.25, "skill": 0.25, "centroid": 0.10}
_NEW_SKILL_SOURCES = {"pattern", "llm"}


def derive_profile(name: str) -> SkillProfile:
    """A first guess at an unknown skill's profile, from the shape of its name (a reviewer confirms it)."""
    lower = name.lower()
    if lower.endswith(("testing", "development", "design", "management", "analysis", "engineering")):
        return SkillProfile(category="Practice", nature="PRACTICE", volatility="STABLE", typical_lifespan="EVERGREEN")
    if lower.endswith(("programming", "theory", "principles")):
        return SkillProfile(category="Concept", nature="CONCEPT", volatility="STABLE", typical_lifespan="EVERGREEN")
    if any(c.isdigit() for c in name) or any(c.isupper() for c in name[1:]) or name[:1].isupper():
        return SkillProfile(category="Tool", nature="TOOL", volatility="MEDIUM", typical_lifespan="MULTI_YEAR")
    return SkillProfile(category="Concept", nature="CONCEPT", volatility="MEDIUM", typical_lifespan="MULTI_YEAR")


def resolve_skills(findings: list[SkillFinding], catalog: Catalog, *, accept: float) -> list[ResolvedSkill]:
    if not findings:
        return []
    # A finding the extractor already tied to a catalog skill (slug hint) is looked up lexically only: when its
    # own words are not an alias ("plan lessons" for Lesson Planning) it resolves through the hint below, so an
    # embedding search for it would be thrown away.
    hinted = [i for i, f in enumerate(findings) if f.slug_hint]
    plain = [i for i, f in enumerate(findings) if not f.slug_hint]
    matches: list[SkillMatch] = [SkillMatch(term=f.name) for f in findings]
    for group, threshold in ((hinted, 2.0), (plain, accept)):
        if group:
            found = catalog.lookup_skills([findings[i].name for i in group], accept=threshold)
            for i, match in zip(group, found, strict=True):
                matches[i] = match
    # "multi-threading and asynchronous programming": a coordinated item that missed is retried without the
    # shared head word, lexically, in one batch.
    retry_at = [
        i
        for i, (f, m) in enumerate(zip(findings, matches, strict=True))
        if m.skill is None and f.extracted_by == "coordination" and f.name.rsplit(" ", 1)[0].strip()
    ]
    if retry_at:
        retries = catalog.lookup_skills([findings[i].name.rsplit(" ", 1)[0] for i in retry_at], accept=2.0)
        for i, retry in zip(retry_at, retries, strict=True):
            if retry.skill is not None:
                matches[i] = retry
    for i in hinted:
        if matches[i].skill is None:  # resolved through the hint, as a normalised match
            ref = catalog.get_skill(str(findings[i].slug_hint))
            matches[i] = SkillMatch(
                term=findings[i].name, skill=ref, match_via="normalized", score=1.0, alias=ref.display_name
            )
    by_slug: dict[str, ResolvedSkill] = {}
    skill_ids: dict[str, int] = {}
    new: dict[str, ResolvedSkill] = {}
    for finding, match in zip(findings, matches, strict=True):
        evidence = [SkillEvidence(sentence=m.sentence.text, start=m.start, end=m.end) for m in finding.mentions]
        if match.skill is not None:
            slug = match.skill.slug
            if slug in by_slug:
                existing = by_slug[slug]
                existing.evidence.extend(e for e in evidence if e not in existing.evidence)
                existing.is_primary = existing.is_primary or finding.is_primary
                if match.score > existing.score:
                    existing.match_via, existing.score, existing.alias = match.match_via, match.score, match.alias
                continue
            skill_ids[slug] = match.skill.id
            by_slug[slug] = ResolvedSkill(
                name=finding.name,
                canonical_slug=slug,
                canonical_name=match.skill.display_name,
                source_id=match.skill.source_id,
                match_via=match.match_via,
                score=match.score,
                alias=match.alias,
                tag="in_db",
                is_primary=finding.is_primary,
                extracted_by=finding.extracted_by,
                evidence=evidence,
            )
        elif finding.extracted_by in _NEW_SKILL_SOURCES:
            key = normalize_alias(finding.name)
            if key and key not in new:
                new[key] = ResolvedSkill(
                    name=finding.name,
                    tag="new",
                    is_primary=finding.is_primary,
                    extracted_by=finding.extracted_by,
                    evidence=evidence,
                    proposed_profile=derive_profile(finding.name),
                    score=match.score,
                )
    skills = list(by_slug.values())
    dims = catalog.dimensions_for_skills(list(skill_ids.values()))
    for skill in skills:
        skill.dimensions = [
            DimensionOut(slug=d.slug, name=d.name) for d in dims.get(skill_ids[skill.canonical_slug or ""], [])
        ]
        skill.evidence.sort(key=lambda e: e.start or 0)
    skills.sort(key=lambda s: (not s.is_primary, min((e.start or 0) for e in s.evidence) if s.evidence else 0))
    return skills + sorted(new.values(), key=lambda s: s.name.lower())


def role_signals(
    catalog: Catalog,
    *,
    titles: list[str],
    responsibility: list[Sentence],
    skills: list[ResolvedSkill],
    jd_vector: np.ndarray | None,
    sentence_vectors: np.ndarray | None,
    k: int = 10,
) -> list[RoleSignal]:
    title_hits = catalog.role_title_matches(titles) if titles else {}
    sentences = [s.text for s in responsibility]
    kra_hits = catalog.kra_matches(sentences, sentence_vectors, per_sentence=10) if sentences else {}
    centroid = catalog.centroid_similarities(jd_vector, k=25) if jd_vector is not None else {}
    skill_sets = catalog.role_skill_sets()
    wanted = [s.canonical_slug for s in skills if s.canonical_slug]
    overlap: dict[int, tuple[float, list[str], int]] = {}
    if wanted:
        for role_id, weights in skill_sets.items():
            matched = [s for s in wanted if s in weights]
            if matched:
                overlap[role_id] = (sum(weights[s] for s in matched) / len(wanted), matched, len(weights))
    candidates = set(title_hits) | set(kra_hits) | set(centroid) | set(overlap)
    if sentences and sentence_vectors is not None:
        exact = catalog.kra_matches_for_roles(sentences, sentence_vectors, candidates)
        kra_hits = {**kra_hits, **exact}
    if jd_vector is not None:
        centroid = {**centroid, **catalog.centroid_similarities_for_roles(jd_vector, candidates)}
    roles = catalog.roles_by_id(sorted(candidates))
    signals: list[RoleSignal] = []
    for role_id in candidates:
        alias, title_sim, via = title_hits.get(role_id, (None, 0.0, "none"))
        top3 = kra_hits.get(role_id, [])[:3]
        kra_sim = sum(m.similarity for m in top3) / 3 if top3 else 0.0
        ov, matched, total = overlap.get(role_id, (0.0, [], len(skill_sets.get(role_id, {}))))
        cen = centroid.get(role_id, 0.0)
        title_part = title_sim if titles else 0.0
        score = (
            WEIGHTS["title"] * title_part
            + WEIGHTS["kra"] * kra_sim
            + WEIGHTS["skill"] * ov
            + WEIGHTS["centroid"] * max(cen, 0.0)
        )
        role = roles[role_id]
        signals.append(
            RoleSignal(
                slug=role.slug,
                display_name=role.display_name,
                source_id=role.source_id,
                domain=role.domain,
                score=round(score, 4),
                title_alias=alias,
                title_similarity=round(title_sim, 4),
                title_match_via=via,
                kra_similarity=round(kra_sim, 4),
                kra_matches=top3,
                skill_overlap=round(ov, 4),
                matched_skills=matched,
                role_skill_count=total,
                centroid_similarity=round(cen, 4),
            )
        )
    signals.sort(key=lambda s: (-s.score, -s.title_similarity, -s.kra_similarity, -s.skill_overlap, s.slug))
    return signals[:k]


def confidence(signals: list[RoleSignal]) -> float:
    """Confidence of the top candidate from its score and its margin over the runner-up.

    A logistic in the fused score (centred at 0.45, where goldens show choices become reliable) scaled by how
    clear the margin is; fixed, documented constants rather than a fitted model.
    """
    if not signals:
        return 0.0
    top = signals[0].score
    margin = top - signals[1].score if len(signals) > 1 else top
    base = 1 / (1 + math.exp(-12 * (top - 0.45)))
    return round(base * (0.55 + 0.45 * min(1.0, margin / 0.08)), 4)
