"""match: canonical skills for the extracted names (role signals are :mod:`jdgraph.matching.roles`'s).

Each extracted name resolves exact → normalised → embedding alias; unresolved names from sources that can name
new things (list patterns, the LLM) become proposals with a derived profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from lemminflect import getAllLemmas
from pydantic import BaseModel, Field

from jdgraph.catalog.models import MatchVia, SkillMatch
from jdgraph.catalog.normalize import normalize_alias
from jdgraph.catalog.queries import Catalog

_NEW_SKILL_SOURCES = {"pattern", "term", "llm", "tagger"}
_NEW_SKILL_MAX_WORDS = 4
"""A tagged span longer than this that no catalog skill matches is a requirement phrase ("work closely with the
product team on roadmaps"), not a skill's name: it is not proposed as a new skill."""


class _Sentence(Protocol):
    @property
    def text(self) -> str: ...


class _Mention(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def sentence(self) -> _Sentence: ...


class Finding(Protocol):
    """What matching reads of an extracted skill (the extractor's :class:`jdgraph.graph.extract.SkillFinding`)."""

    @property
    def name(self) -> str: ...
    @property
    def extracted_by(self) -> str: ...
    @property
    def is_primary(self) -> bool: ...
    @property
    def slug_hint(self) -> str | None: ...
    @property
    def mentions(self) -> Sequence[_Mention]: ...
    @property
    def confidence(self) -> float: ...
    @property
    def names_knowledge(self) -> bool: ...


class SkillEvidence(BaseModel):
    sentence: str
    start: int | None = Field(None, description="Character offset of the mention in the (text-converted) JD")
    end: int | None = None


class DimensionOut(BaseModel):
    slug: str
    name: str


class SkillProfile(BaseModel):
    """Derived profile of a skill that is not in the catalog (a proposal for review)."""

    category: str
    nature: str
    volatility: str
    typical_lifespan: str


class ResolvedSkill(BaseModel):
    name: str = Field(description="As named in the JD")
    canonical_slug: str | None = None
    canonical_name: str | None = None
    source_id: str | None = None
    match_via: MatchVia = "none"
    score: float = 0.0
    alias: str | None = None
    tag: Literal["in_db", "new", "unmatched"] = "new"
    """in_db: a catalog skill; new: proposed for review; unmatched: a span the trained tagger marked as a skill that
    no catalog skill matches and that is no name to propose (a phrase such as "solve complex problems"): kept as
    evidence of what the job asks, neither linked nor queued."""
    is_primary: bool = False
    extracted_by: Literal["alias", "coordination", "embedding", "pattern", "term", "llm", "tagger"] = "alias"
    evidence: list[SkillEvidence] = Field(default_factory=list)
    dimensions: list[DimensionOut] = Field(default_factory=list)
    proposed_profile: SkillProfile | None = None


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


def name_like(name: str) -> bool:
    """Could ``name`` be a new skill's name for a reviewer to approve: at most four words, one of them coined (see
    :func:`_coined`). What a catalog lacks is mostly new tools and technologies; a phrase of plain English words
    ("party", "Growth", "open models") is a description that a catalog skill covers or no reviewer wants."""
    words = name.split()
    if not words or len(words) > _NEW_SKILL_MAX_WORDS:
        return False
    return any(_coined(w) for w in words)


def _coined(word: str) -> bool:
    """A word no English dictionary has, or one spelled as a product or technology: "Kubernetes", "MariaDB",
    "SCSS", "Node.js", "C#"."""
    if any(c.isdigit() or c in "+#." for c in word) or any(c.isupper() for c in word[1:]):
        return True
    return not getAllLemmas(word.strip("()[],;:").casefold())


def _plain_tagged_word(finding: Finding) -> bool:
    """A span the tagger marked that is one plain word (not a coined or technology name)."""
    return finding.extracted_by == "tagger" and len(finding.name.split()) == 1 and not _coined(finding.name)


def resolve_skills(
    findings: Sequence[Finding],
    catalog: Catalog,
    *,
    accept: float,
    tagged_accept: float | None = None,
    tagged_propose: float = 0.0,
) -> list[ResolvedSkill]:
    """Catalog skills (or new-skill proposals) for ``findings``. ``tagged_accept``: a span the trained tagger
    marked as a skill links to its nearest catalog skill from this similarity on (below ``accept``: the tagger has
    already said the words name a skill, so a looser match of what it names is safe), else it is proposed as new
    when it was tagged as knowledge (a name: "Kubernetes", "GAAP"; an ability tagged as a skill is a verb phrase,
    "build and maintain", which describes rather than names), :func:`name_like`, and tagged with confidence
    ``tagged_propose`` or more; else it is kept as ``unmatched`` evidence."""
    if not findings:
        return []
    # A finding the extractor already tied to a catalog skill (slug hint) is looked up lexically only: when its
    # own words are not an alias ("plan lessons" for Lesson Planning) it resolves through the hint below, so an
    # embedding search for it would be thrown away.
    # A technology-like name ("SaaS", "CircleCI") is an alias or it is new: its vector sits near skills that merely
    # contain it ("SaaS Sales"), so it is looked up lexically only too.
    # A tagged span of one plain word ("hardware", "care") carries no sense of its own: it links only through an
    # alias, so it is looked up lexically only as well (its nearest alias by embedding could link it at the
    # general threshold, and searching for it was most of a JD's database time on ESCO).
    lexical_only = [_plain_tagged_word(f) or bool(f.slug_hint) or f.extracted_by == "term" for f in findings]
    hinted = [i for i, only in enumerate(lexical_only) if only]
    plain = [i for i, only in enumerate(lexical_only) if not only]
    matches: list[SkillMatch] = [SkillMatch(term=f.name) for f in findings]
    for group, threshold in ((hinted, None), (plain, accept)):
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
        retries = catalog.lookup_skills([findings[i].name.rsplit(" ", 1)[0] for i in retry_at], accept=None)
        for i, retry in zip(retry_at, retries, strict=True):
            if retry.skill is not None:
                matches[i] = retry
    if tagged_accept is not None:
        for i, (f, m) in enumerate(zip(findings, matches, strict=True)):
            top = m.candidates[0] if m.candidates else None
            if m.skill is None and f.extracted_by == "tagger" and top and top.score >= tagged_accept:
                matches[i] = SkillMatch(term=f.name, skill=top.skill, match_via="embedding", score=top.score,
                                        alias_id=top.alias_id, alias=top.alias, candidates=m.candidates)  # fmt: skip
    for i in hinted:
        if matches[i].skill is None and findings[i].slug_hint:  # resolved through the hint, as a normalised match
            ref = catalog.get_skill(str(findings[i].slug_hint))
            matches[i] = SkillMatch(
                term=findings[i].name, skill=ref, match_via="normalized", score=1.0, alias=ref.display_name
            )
    by_slug: dict[str, ResolvedSkill] = {}
    skill_ids: dict[str, int] = {}
    new: dict[str, ResolvedSkill] = {}
    unmatched: dict[str, ResolvedSkill] = {}
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
        elif finding.extracted_by in _NEW_SKILL_SOURCES and (
            finding.extracted_by != "tagger"
            or (finding.names_knowledge and name_like(finding.name) and finding.confidence >= tagged_propose)
        ):
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
        elif finding.extracted_by == "tagger":
            key = normalize_alias(finding.name)
            if key and key not in unmatched:
                unmatched[key] = ResolvedSkill(name=finding.name, tag="unmatched", is_primary=finding.is_primary,
                                               extracted_by="tagger", evidence=evidence, score=match.score)  # fmt: skip
    skills = list(by_slug.values())
    dims = catalog.dimensions_for_skills(list(skill_ids.values()))
    for skill in skills:
        skill.dimensions = [
            DimensionOut(slug=d.slug, name=d.name) for d in dims.get(skill_ids[skill.canonical_slug or ""], [])
        ]
        skill.evidence.sort(key=lambda e: e.start or 0)
    skills.sort(key=lambda s: (not s.is_primary, min((e.start or 0) for e in s.evidence) if s.evidence else 0))
    by_name = sorted(new.values(), key=lambda s: s.name.lower())
    return skills + by_name + sorted(unmatched.values(), key=lambda s: min((e.start or 0) for e in s.evidence))
