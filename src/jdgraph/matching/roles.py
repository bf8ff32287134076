"""How jdgraph scores roles: the one home of role fusion, skill overlap and confidence.

The graph's match node and the catalog tools (``search_roles``, ``roles_for_skills``) both call these functions,
so the adjudicator is shown candidates scored exactly as its tools score them. Every weight and threshold is a
field of :class:`ScoringParams`, which :class:`jdgraph.context.Context` builds from its own documented,
env-overridable fields. Four signals per role, as in the reference system's stage 3 plus the centroid, the title's
including the vote of coded vacancy titles:

    score = title_weight · ((1 - v) · title score + v · title vote) + kra_weight · mean of the top-n KRA↔sentence
            similarities + skill_weight · IDF-weighted skill overlap + centroid_weight · centroid similarity

where v is ``title_vote_weight`` (0 when the catalog holds no coded vacancy titles), the title vote is the role's
share of the vote of the coded vacancy titles nearest the JD's title relative to the leading role's, and the
title score blends the best title
alias (a lexical match, normalised form equal to the JD's title, scores 1.0; one found by embedding scores
(1 - title_lexical_weight) · cosine + title_lexical_weight · word overlap) with the title's similarity to the
role's centroid (``title_centroid_weight``).

Candidates come from the title, KRA and skill signals and the roles whose centroid is nearest the title's or the
JD's vector; each is scored on all four (the centroid is computed for candidates only), and the ranking breaks
ties on (title, KRA, overlap) and finally the slug, so equal scores never tie.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from jdgraph.catalog.models import KraMatch, MatchVia, RoleRef, RoleSkillOverlap
from jdgraph.catalog.queries import Catalog, TitleHit, clean_query
from jdgraph.errors import InputError


@dataclass(frozen=True)
class ScoringParams:
    title_weight: float = 0.40
    kra_weight: float = 0.25
    skill_weight: float = 0.15
    centroid_weight: float = 0.20
    title_lexical_weight: float = 0.5
    """An embedding-matched title alias scores (1 - w) · cosine + w · word overlap with the JD's title (exact and
    normalised matches score 1.0): the overlap keeps "Rust Developer" from "rustproofer", whose vector is close."""
    kra_top_n: int = 3
    """KRA similarity is the mean of a role's best n KRA↔sentence pairs (fewer when the role has fewer KRAs)."""
    skill_candidates: int = 50
    """Roles found only by skill overlap that are scored on every signal: the best this many by overlap."""
    centroid_candidates: int = 20
    """Roles whose centroid is nearest the JD's vector (and the title's) join the candidates: a JD whose title names
    no catalog role ("MEAL Officer") is still found by what it describes."""
    title_centroid_weight: float = 0.5
    """The title score is (1 - w) · its best alias score + w · the title's similarity to the role's centroid."""
    skill_idf: bool = True
    """Skill overlap weighs each skill by its inverse role frequency (see :func:`skill_idf`)."""
    title_vote_weight: float = 0.7
    """Share of the title score that is the vote of the coded vacancy titles nearest the JD's title (``jdgraph
    catalog import titles``; without examples the title score is as before): each of the ``title_vote_k`` nearest
    votes for the role it was coded to with weight ``exp((cos - best cos) / T)``; a role's vote is its share of the
    neighbourhood divided by the leading role's share (see :func:`title_votes`). Chosen on held-out TRAINING
    titles (``python -m jdgraph.evals.tune_title_vote``), never on the dev suites. A whole JD uses
    ``Context.jd_title_vote_weight`` instead."""
    title_vote_with_aliases: bool = True
    """The catalog's title aliases near the title vote beside the coded titles (see :func:`_vote_neighbours`)."""
    title_vote_k: int = 20
    title_vote_temperature: float = 0.10
    # Fitted by `jdgraph eval calibrate hahu-dev --catalog esco` (130 real ads against ESCO v1.1.1, log loss over a
    # grid; out-of-fold ECE 0.036 where the hand-set 0.45 / 12 / 0.08 had 0.133). Refit on your own labelled ads.
    confidence_center: float = 0.46
    """Fused score at which the confidence logistic is 0.5."""
    confidence_slope: float = 9.0
    confidence_full_margin: float = 0.14
    """A lead over the runner-up of at least this keeps the full confidence; a smaller one scales it down."""


class RoleSignal(BaseModel):
    """One candidate role with every signal it was scored on."""

    slug: str
    display_name: str
    source_id: str | None = None
    domain: str | None = None
    score: float = Field(description="Fused score")
    title_alias: str | None = None
    title_similarity: float = 0.0
    title_match_via: MatchVia = "none"
    kra_similarity: float = 0.0
    kra_matches: list[KraMatch] = Field(default_factory=list)
    skill_overlap: float = 0.0
    matched_skills: list[str] = Field(default_factory=list)
    role_skill_count: int = 0
    centroid_similarity: float = 0.0
    title_vote: float = Field(
        default=0.0, description="this role's share of the nearest coded vacancy titles' vote, relative to the leader's"
    )


def title_votes(neighbours: Sequence[tuple[int, float]], params: ScoringParams) -> dict[int, float]:
    """role id → its share of the softmax-weighted vote of the ``title_vote_k`` nearest coded titles
    (``neighbours``: (role id, cosine), best first), divided by the leading role's share."""
    top = list(neighbours[: params.title_vote_k])
    if not top or params.title_vote_weight == 0:
        return {}
    best = top[0][1]
    weights = [math.exp((sim - best) / params.title_vote_temperature) for _, sim in top]
    total = sum(weights)
    votes: dict[int, float] = {}
    for (role_id, _), w in zip(top, weights, strict=True):
        votes[role_id] = votes.get(role_id, 0.0) + w / total
    # Relative to the leader, so the vote is on the scale of a similarity (the leader 1.0), not a share that a split
    # neighbourhood spreads thin: the fused score then keeps the scale the new-role threshold and the confidence
    # curve were set on.
    lead = max(votes.values())
    return {role_id: v / lead for role_id, v in votes.items()}


def _vote_neighbours(
    examples: Sequence[tuple[int, float]], hits: Sequence[TitleHit], title: str, params: ScoringParams
) -> list[tuple[int, float]]:
    """The voters, best first: the coded vacancy titles nearest the title and, with ``title_vote_with_aliases``, the
    catalog's own title aliases among them (a taxonomist's coding counts as one more employer's): a title that is
    word for word an occupation's label ("Pharmacist") is not outvoted by how one job board happened to code it."""
    voters = list(examples)
    if params.title_vote_with_aliases:
        voters += [(h.role_id, 1.0 if h.match_via == "normalized" else h.similarity) for h in hits if h.title == title]
    return sorted(voters, key=lambda v: -v[1])


def skill_overlap(
    wanted: Sequence[str], weights: dict[str, float], idf: dict[str, float] | None = None
) -> tuple[float, list[str]]:
    """Weighted overlap of the JD's skills with one role's skill set: the matched skills' link weights times their
    informativeness (``idf``; 1 when not given) over the JD's skills' informativeness, so a role is rewarded
    neither for being large nor for sharing skills that most roles list ("communication", "teamwork")."""
    index = SkillIndex({s: [(0, w)] for s, w in weights.items()}, idf or {}, max((idf or {}).values(), default=1.0))
    return skill_overlaps(wanted, index, use_idf=idf is not None).get(0, (0.0, []))


@dataclass(frozen=True)
class SkillIndex:
    """Roles by skill (an inverted index of every role's skill set) and each skill's inverse role frequency."""

    roles_by_skill: dict[str, list[tuple[int, float]]]
    idf: dict[str, float]
    unknown_idf: float
    """A skill no role lists counts as much as the rarest listed one."""
    role_sizes: dict[int, int] = field(default_factory=dict)


def skill_index(skill_sets: dict[int, dict[str, float]]) -> SkillIndex:
    """Inverse role frequency of each skill is ``log((1 + roles) / (1 + roles listing it))``: 0 for a skill every
    role lists, highest for a skill one role lists."""
    roles_by_skill: dict[str, list[tuple[int, float]]] = {}
    for role_id, weights in skill_sets.items():
        for slug, weight in weights.items():
            roles_by_skill.setdefault(slug, []).append((role_id, weight))
    n = len(skill_sets)
    idf = {slug: math.log((1 + n) / (1 + len(roles))) for slug, roles in roles_by_skill.items()}
    sizes = {role_id: len(weights) for role_id, weights in skill_sets.items()}
    return SkillIndex(roles_by_skill, idf, max(idf.values(), default=1.0), sizes)


def skill_idf(skill_sets: dict[int, dict[str, float]]) -> dict[str, float]:
    return skill_index(skill_sets).idf


def skill_overlaps(wanted: Sequence[str], index: SkillIndex, *, use_idf: bool) -> dict[int, tuple[float, list[str]]]:
    """:func:`skill_overlap` for every role that shares a skill with the JD, through the inverted index (the cost
    is the postings of the JD's skills, not the number of roles)."""
    wanted = list(dict.fromkeys(s for s in wanted if s))

    def weight(slug: str) -> float:
        return index.idf.get(slug, index.unknown_idf) if use_idf else 1.0

    total = sum(weight(s) for s in wanted)
    score: dict[int, float] = {}
    matched: dict[int, list[str]] = {}
    for slug in wanted:
        for role_id, link in index.roles_by_skill.get(slug, ()):
            score[role_id] = score.get(role_id, 0.0) + link * weight(slug)
            matched.setdefault(role_id, []).append(slug)
    return {r: (score[r] / total if total else 0.0, matched[r]) for r in score}


def _catalog_skill_index(catalog: Catalog) -> SkillIndex:
    return catalog.cached("skill_index", lambda: skill_index(catalog.role_skill_sets()))


_WORD = re.compile(r"[a-z0-9+#]+")


def _title_words(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


def title_overlap(jd_title: str, alias: str) -> float:
    """Word overlap of a JD title and a title alias: the F1 of the title's words found in the alias (the last
    word, the head noun of an English job title, counts twice) and of the alias's words found in the title."""
    title, words = _title_words(jd_title), set(_title_words(alias))
    if not title or not words:
        return 0.0
    weights = [1.0] * len(title)
    weights[-1] = 2.0
    recall = sum(w for t, w in zip(title, weights, strict=True) if t in words) / sum(weights)
    precision = len(set(title) & words) / len(words)
    return 2 * recall * precision / (recall + precision) if recall + precision else 0.0


def best_title_matches(hits: Sequence[TitleHit], params: ScoringParams) -> dict[int, tuple[str, float, str]]:
    """role id → (alias, title score, match_via) of each role's best-scoring title alias."""
    best: dict[int, tuple[str, float, str]] = {}
    for hit in hits:
        if hit.match_via == "normalized":
            score = 1.0
        else:
            w = params.title_lexical_weight
            score = (1 - w) * hit.similarity + w * title_overlap(hit.title, hit.alias)
        if hit.role_id not in best or best[hit.role_id][1] < score:
            best[hit.role_id] = (hit.alias, score, hit.match_via)
    return best


def role_signals(
    catalog: Catalog,
    *,
    titles: Sequence[str],
    sentences: Sequence[str],
    sentence_vectors: np.ndarray | None,
    skills: Sequence[str],
    jd_vector: np.ndarray | None,
    params: ScoringParams,
    k: int = 10,
) -> list[RoleSignal]:
    """The top ``k`` roles for a JD's titles, responsibility sentences (with their vectors), canonical skill slugs
    and JD vector, each scored on every signal."""
    titles = [t for t in titles if t and t.strip()]
    raw_title_hits = catalog.role_title_hits(titles) if titles else []
    title_hits = best_title_matches(raw_title_hits, params)
    kra_hits = (
        catalog.kra_matches(list(sentences), sentence_vectors, per_sentence=10)
        if sentences and sentence_vectors is not None
        else {}
    )
    index = _catalog_skill_index(catalog)
    overlap = skill_overlaps(skills, index, use_idf=params.skill_idf)
    # Candidates come from titles, KRAs, skills and centroids; exact KRA and centroid similarities are computed for
    # them only. On ESCO hundreds of roles share some skill with a JD; those beyond the best skill_candidates by
    # overlap cannot reach the top k on a 0.15-weighted signal, and scoring them cost 55 ms per JD.
    by_overlap = sorted(overlap, key=lambda r: (-overlap[r][0], r))[: params.skill_candidates]
    title_vector = catalog.embeddings.embed_array(titles[:1])[0] if titles else None
    votes: dict[int, float] = {}
    if title_vector is not None and params.title_vote_weight:
        examples = catalog.nearest_title_examples(title_vector, params.title_vote_k)
        if examples:
            votes = title_votes(_vote_neighbours(examples, raw_title_hits, titles[0], params), params)
    candidates = set(title_hits) | set(kra_hits) | set(by_overlap) | set(votes)
    if params.centroid_candidates:
        for vector in (title_vector, jd_vector):
            if vector is not None:
                candidates |= set(catalog.nearest_roles_by_centroid(vector, params.centroid_candidates))
    if sentences and sentence_vectors is not None:
        exact = catalog.kra_matches_for_roles(list(sentences), sentence_vectors, candidates, top=params.kra_top_n)
        kra_hits = {**kra_hits, **exact}
    centroid = catalog.centroid_similarities_for_roles(jd_vector, candidates) if jd_vector is not None else {}
    title_centroid = (
        catalog.centroid_similarities_for_roles(title_vector, candidates) if title_vector is not None else {}
    )
    roles = catalog.roles_by_id(sorted(candidates))
    signals = [
        _signal(
            roles[role_id],
            title_hits.get(role_id),
            title_centroid.get(role_id, 0.0),
            kra_hits.get(role_id, [])[: params.kra_top_n],
            overlap.get(role_id, (0.0, [])),
            index.role_sizes.get(role_id, 0),
            centroid.get(role_id, 0.0),
            votes.get(role_id, 0.0),
            bool(votes),
            params,
        )
        for role_id in candidates
        if role_id in roles
    ]
    signals.sort(key=lambda s: (-s.score, -s.title_similarity, -s.kra_similarity, -s.skill_overlap, s.slug))
    return signals[:k]


def _signal(
    role: RoleRef,
    title: tuple[str, float, str] | None,
    title_centroid: float,
    kras: list[KraMatch],
    overlap: tuple[float, list[str]],
    role_skill_count: int,
    centroid: float,
    vote: float,
    vote_available: bool,
    params: ScoringParams,
) -> RoleSignal:
    alias, alias_sim, via = title or (None, 0.0, "none")
    # The title against the role as a whole (its centroid: labels, description, KRAs) as well as against its best
    # single alias: ESCO lists many near-identical alt labels across occupations, and the whole role breaks ties
    # among them ("Junior Accountant" is nearer accountant than a financial auditor alias "accountant auditor").
    wc = params.title_centroid_weight
    title_sim = (1 - wc) * alias_sim + wc * max(title_centroid, 0.0)
    # The mean over the pairs the role has (at most top-n): an ESCO occupation with two description sentences is
    # not scored as if a third KRA had matched nothing.
    kra_sim = sum(m.similarity for m in kras) / len(kras) if kras else 0.0
    # The vote is part of the title signal (how employers write the title), not a fifth signal beside it: the title's
    # share of the fused score stays title_weight, so a description still outweighs a title as much as it did.
    wv = params.title_vote_weight if vote_available else 0.0
    score = (
        params.title_weight * ((1 - wv) * title_sim + wv * vote)
        + params.kra_weight * kra_sim
        + params.skill_weight * overlap[0]
        + params.centroid_weight * max(centroid, 0.0)
    )
    return RoleSignal(
        slug=role.slug,
        display_name=role.display_name,
        source_id=role.source_id,
        domain=role.domain,
        score=round(score, 4),
        title_alias=alias,
        title_similarity=round(title_sim, 4),
        title_match_via=via,
        kra_similarity=round(kra_sim, 4),
        kra_matches=kras,
        skill_overlap=round(overlap[0], 4),
        matched_skills=overlap[1],
        role_skill_count=role_skill_count,
        centroid_similarity=round(centroid, 4),
        title_vote=round(vote, 4),
    )


def search_roles(catalog: Catalog, title_or_text: str, params: ScoringParams, k: int = 5) -> list[RoleSignal]:
    """Roles for a title or a short text, scored by :func:`role_signals` as a JD whose title, only sentence and
    vector are that text (and whose skills are unknown)."""
    text = clean_query(title_or_text)
    vectors = catalog.embeddings.embed_array([text])
    return role_signals(
        catalog,
        titles=[text],
        sentences=[text],
        sentence_vectors=vectors,
        skills=[],
        jd_vector=vectors[0],
        params=params,
        k=k,
    )


def roles_for_skills(
    catalog: Catalog, skills: Sequence[str], k: int = 5, params: ScoringParams | None = None
) -> list[RoleSkillOverlap]:
    """Roles ranked by :func:`skill_overlap` with the given skill slugs (weighted as the match node weighs them)."""
    params = params or ScoringParams()
    wanted = list(dict.fromkeys(s for s in skills if s))
    if not wanted:
        raise InputError("no skills given", field="skills")
    overlaps = skill_overlaps(wanted, _catalog_skill_index(catalog), use_idf=params.skill_idf)
    scored = [(role_id, score, matched) for role_id, (score, matched) in overlaps.items()]
    roles = catalog.roles_by_id([r for r, _, _ in scored])
    ranked = [
        RoleSkillOverlap(role=roles[r], matched=m, total=len(wanted), score=round(s, 4))
        for r, s, m in scored
        if r in roles
    ]
    ranked.sort(key=lambda o: (-o.score, -len(o.matched), o.role.slug))
    return ranked[:k]


def fits_no_role(leader: RoleSignal, new_role_threshold: float) -> bool:
    """Is ``leader`` too weak to be the JD's role (a new-role proposal)? Its fused score is below the threshold,
    and the JD's title is not word for word one of its titles: a "Barista" ad whose description is thin is still a
    barista, not a role the catalog lacks."""
    return leader.score < new_role_threshold and leader.title_match_via != "normalized"


def confidence(signals: Sequence[RoleSignal], params: ScoringParams) -> float:
    """Confidence of the top candidate from its fused score and its margin over the runner-up."""
    if not signals:
        return 0.0
    top = signals[0].score
    margin = top - signals[1].score if len(signals) > 1 else top
    return confidence_from(top, margin, params)


def confidence_from(top: float, margin: float, params: ScoringParams) -> float:
    """:func:`confidence_curve` for one candidate, rounded as results report it."""
    value = confidence_curve(
        top, margin, params.confidence_center, params.confidence_slope, params.confidence_full_margin
    )
    return round(float(value), 4)


def confidence_curve(top: Any, margin: Any, center: Any, slope: Any, full_margin: Any) -> Any:
    """A logistic in the fused score, scaled down when the lead over the runner-up is under ``full_margin``. Works
    on floats and on broadcasting numpy arrays alike (``jdgraph eval calibrate`` scores a whole grid of constants
    at once), so the curve has this one definition."""
    base = 1 / (1 + np.exp(-slope * (top - center)))
    return base * (0.55 + 0.45 * np.minimum(1.0, np.maximum(margin, 0.0) / full_margin))
