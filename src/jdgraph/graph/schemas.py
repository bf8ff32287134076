"""Pydantic models at the graph's edges: LLM structured outputs and the public ClassificationResult.

Field descriptions are part of the prompt contract for the LLM implementations: they are sent as the JSON
schema the model must fill.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from annotated_types import MaxLen
from pydantic import BaseModel, Field, PrivateAttr, create_model, model_validator

from jdgraph.matching.roles import RoleSignal
from jdgraph.matching.skills import ResolvedSkill as ResolvedSkill

WorkMode = Literal["remote", "hybrid", "onsite"]


class SourceMarker(BaseModel):
    first_5_words: str = Field(description="The first five words of the passage, verbatim")
    last_5_words: str = Field(description="The last five words of the passage, verbatim")


class AboutCompany(BaseModel):
    text: str
    word_count: int
    source_marker: SourceMarker | None = None


class Experience(BaseModel):
    min: float | None = Field(None, description="Minimum years of experience required (the strictest stated)")
    max: float | None = Field(None, description="Maximum years, only when a range is stated")
    raw: str | None = Field(None, description="The sentence or phrase that states it, verbatim")


class JobLocation(BaseModel):
    country: str | None = None
    iso_code: str | None = Field(None, description="ISO 3166-1 alpha-2 country code, e.g. IN, US, DE")
    city: str | None = None
    state: str | None = None
    work_mode: WorkMode | None = None


class DomainName(BaseModel):
    domain: str
    aliases: list[str] = Field(default_factory=list)


class Domain(BaseModel):
    primary: DomainName | None = None
    secondary: DomainName | None = None


class Salary(BaseModel):
    min: float | None = None
    max: float | None = None
    currency: str | None = Field(None, description="ISO 4217 code, e.g. USD, EUR, INR")
    period: Literal["hour", "day", "week", "month", "year"] | None = None
    raw: str | None = None


class ResponsibilitySection(BaseModel):
    heading: str | None = None
    heading_was_present: bool = False
    bullet_count: int = 0
    text: str
    word_count: int
    source_marker: SourceMarker | None = None


class ParsedJD(BaseModel):
    """Structured fields of a job description."""

    jd_type: Literal["pass", "reject"] = Field(description="'reject' when the text is not a job description")
    reject_reason: str | None = Field(None, description="Why the text was rejected, when jd_type is 'reject'")
    role: str | None = Field(None, description="The job title as written in the JD")
    role_aliases: list[str] = Field(default_factory=list, description="Other common titles for the same job")
    role_archetype: str | None = None
    company_name: str | None = None
    about_company: AboutCompany | None = None
    experience: Experience | None = None
    job_locations: list[JobLocation] = Field(default_factory=list)
    domain: Domain | None = None
    education: list[str] = Field(default_factory=list)
    certifications: list[str] = Field(default_factory=list)
    salary: Salary | None = None
    roles_and_responsibilities: list[ResponsibilitySection] = Field(default_factory=list)
    urls: list[str] = Field(default_factory=list)


ANSWER_MAX_STRING = 200
ANSWER_MAX_ITEMS = 6


def _bound(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "string" and "enum" not in node:
            node.setdefault("maxLength", ANSWER_MAX_STRING)
        if node.get("type") == "array":
            node.setdefault("maxItems", ANSWER_MAX_ITEMS)
        for value in node.values():
            _bound(value)
    elif isinstance(node, list):
        for value in node:
            _bound(value)


class BoundedAnswer(BaseModel):
    """A model answer's schema with every string and list bounded (fields may set tighter bounds). The bounds reach
    the server's grammar (llama-server, vLLM) through the JSON schema, so a small model that repeats itself ends
    at a valid answer instead of at the token cap.

    Validation never fails on a bound: a provider that ignores them (JSON mode, a non-strict answer with 25 skills
    or a 500-character evidence) gets its answer cut to the field's bound, and :attr:`truncated` says what was cut
    (the node turns it into a run warning). Failing instead cost a repair call and then the whole answer."""

    _truncated: list[str] = PrivateAttr(default_factory=list)

    @property
    def truncated(self) -> list[str]:
        return self._truncated

    @model_validator(mode="wrap")
    @classmethod
    def _cut_to_bounds(cls, data: Any, handler: Any) -> Any:
        cut: list[str] = []
        answer = handler(_clip_to_bounds(cls, data, "", cut))
        if cut and isinstance(answer, BoundedAnswer):
            answer._truncated = cut
        return answer

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema = super().model_json_schema(*args, **kwargs)
        _bound(schema)
        return schema


def _clip_to_bounds(model: type[BaseModel], data: Any, path: str, cut: list[str]) -> Any:
    """``data`` with each string or list longer than its field's ``max_length`` cut to it (nested models too)."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in out:
            continue
        value = out[key]
        limit = next((m.max_length for m in field.metadata if isinstance(m, MaxLen)), None)
        if limit is not None and isinstance(value, str | list) and len(value) > limit:
            cut.append(f"{path}{key} ({len(value)} → {limit} {'characters' if isinstance(value, str) else 'items'})")
            value = value[:limit]
        inner = _model_in(field.annotation)
        if inner is not None and isinstance(value, list):
            value = [_clip_to_bounds(inner, v, f"{path}{key}[{i}].", cut) for i, v in enumerate(value)]
        elif inner is not None:
            value = _clip_to_bounds(inner, value, f"{path}{key}.", cut)
        out[key] = value
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``list[X]`` or ``X | None``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


class ParsedJDAnswer(ParsedJD, BoundedAnswer):
    """What the parse prompt returns: :class:`ParsedJD`, bounded."""

    reject_reason: str | None = Field(None, max_length=300, description="Why the text is not a job description")
    role: str | None = Field(None, max_length=120, description="The job title as written in the JD")
    role_aliases: list[str] = Field(default_factory=list, max_length=5, description="Other titles for the same job")
    company_name: str | None = Field(None, max_length=120)
    job_locations: list[JobLocation] = Field(default_factory=list, max_length=5)
    education: list[str] = Field(default_factory=list, max_length=5)
    certifications: list[str] = Field(default_factory=list, max_length=10)
    roles_and_responsibilities: list[ResponsibilitySection] = Field(default_factory=list, max_length=6)
    urls: list[str] = Field(default_factory=list, max_length=5)


class ExtractedSkill(BaseModel):
    name: str = Field(
        max_length=80, description="The skill as named in the JD (a technology, method, tool or competence)"
    )
    is_primary: bool = Field(description="True when required/central (in the title, requirements, or repeated)")
    evidence: str = Field(max_length=400, description="The JD sentence that evidences the skill, copied verbatim")


class ExtractedSkills(BoundedAnswer):
    skills: list[ExtractedSkill] = Field(max_length=20, description="Each skill once")


class RoleChoice(BaseModel):
    slug: str | None
    display_name: str | None = None
    source_id: str | None = None
    score: float = 0.0


class Decision(BaseModel):
    chosen_role: RoleChoice
    sub_role: str | None = None
    confidence: float = 0.0
    alternatives: list[RoleChoice] = Field(default_factory=list)
    route: Literal["direct", "adjudicated", "new-role", "rejected"] = "direct"
    llm2_fired: bool = False
    llm2_reason: str | None = None
    decided_by: Literal["fusion", "adjudicator-llm", "adjudicator-rules", "gate"] = "fusion"
    reasoning: str = ""
    is_new_role: bool = False
    new_role_flag: str | None = None
    nearest_role: RoleChoice | None = Field(
        None,
        description="When no catalog role fits (route new-role, chosen_role empty): the closest one, a pointer for "
        "the reviewer of the new-role proposal, not a decision",
    )

    @property
    def confirmed_role(self) -> str | None:
        """The chosen role's slug when the run settled on a catalog role (not a provisional new-role fallback):
        only then may it propose KRAs and links for that role or move its centroid."""
        return self.chosen_role.slug if self.chosen_role.slug and not self.is_new_role else None

    @property
    def role_or_nearest(self) -> RoleChoice:
        """The chosen role, or the nearest one when none fits (for ranking metrics and the review queue)."""
        return self.nearest_role if self.chosen_role.slug is None and self.nearest_role else self.chosen_role


class AdjudicationDecision(BoundedAnswer):
    """The adjudicator's verdict among candidate roles."""

    chosen_role: str = Field(description="Slug of the chosen candidate role (must be one of the candidates)")
    sub_role: str | None = Field(None, description="A more specific sub-role slug when one fits, else null")
    reasoning: str = Field(max_length=800, description="Two or three sentences citing the JD evidence")
    confidence: float = Field(ge=0, le=1)
    is_new_role: bool = Field(description="True when no candidate fits and the catalog needs a new role")


def adjudication_schema(slugs: list[str]) -> type[AdjudicationDecision]:
    """:class:`AdjudicationDecision` whose ``chosen_role`` and ``sub_role`` can only be one of ``slugs`` (an enum in
    the JSON schema): a model is never trusted with an id it could not have seen."""
    choices: Any = Literal[tuple(dict.fromkeys(slugs))]
    return create_model(
        "AdjudicationDecision",
        __base__=AdjudicationDecision,
        chosen_role=(choices, Field(description="Slug of the chosen candidate role")),
        sub_role=(choices | None, Field(None, description="A more specific candidate slug when one fits, else null")),
    )


class QueuedItem(BaseModel):
    kind: Literal["new_skill", "new_alias", "new_kra", "new_role", "new_link", "quarantine"]
    key: str
    payload: dict[str, object]


class PersistOutcome(BaseModel):
    item: str
    kind: Literal["skill_dimension", "role_dimension", "review_queue", "centroid", "collision_log", "run"]
    outcome: str = Field(description="'saved', 'already linked', 'queued', 'updated' or 'skipped: <reason>'")


class LLMCallRecord(BaseModel):
    seq: int
    node: str
    model: str
    prompt_name: str
    prompt_version: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    outcome: Literal["ok", "repaired", "fallback", "error"] = "ok"
    attempts: int = 1
    error: str | None = None
    method: str | None = Field(None, description="how structured output was requested (json_schema, json_mode…)")


class Enrichment(BaseModel):
    nature_of_work: str
    nature_of_work_evidence: str | None = None
    ai_index: float = Field(ge=0, le=5)
    ai_index_breakdown: dict[str, float] = Field(default_factory=dict)
    tech_stack_maturity: str
    tech_stack_reasoning: str
    skill_clusters: dict[str, list[str]] = Field(default_factory=dict)


NatureOfWork = Literal[
    "Research and experimentation",
    "Performance and production support",
    "Building new products",
    "Operations and service delivery",
    "Selling and growing accounts",
    "Teaching and advising",
    "General",
]
TechStackMaturity = Literal["Modern Cloud Native", "Established", "Legacy", "Not applicable"]


class AIIndexBreakdown(BaseModel):
    title_match: float = Field(description="0 to 1.5: the title is an AI/ML role")
    ai_skill_primary: float = Field(description="0 to 1.5: required AI/ML skills")
    ai_skill_secondary: float = Field(description="0 to 0.5: nice-to-have AI/ML skills")
    on_ai_team: float = Field(description="0 to 0.5: the job sits in an AI/ML team")
    builds_ai_products: float = Field(description="0 to 1: the job builds AI products or features")


class LLMEnrichment(BoundedAnswer):
    """What the enrich prompt returns. Skill clusters are not asked for: they come from the catalog's links."""

    nature_of_work: NatureOfWork
    nature_of_work_evidence: str | None = Field(
        None, max_length=400, description="The JD sentence that shows it, verbatim"
    )
    ai_index_breakdown: AIIndexBreakdown
    tech_stack_maturity: TechStackMaturity
    tech_stack_reasoning: str = Field(max_length=600)


class ClassificationResult(BaseModel):
    """Everything a run produced (what the reference system's run page shows, without its bugs)."""

    run_id: str
    input_id: str | None = None
    """The caller's id for the input (a batch line's id) or a hash of the text and options."""
    status: Literal["completed", "rejected", "failed"]
    parsed: ParsedJD
    skills: list[ResolvedSkill] = Field(default_factory=list)
    role_signals: list[RoleSignal] = Field(default_factory=list)
    decision: Decision
    queued: list[QueuedItem] = Field(default_factory=list)
    persistence: list[PersistOutcome] = Field(default_factory=list)
    enrichment: Enrichment | None = None
    llm_calls: list[LLMCallRecord] = Field(default_factory=list)
    llm_cost_usd: float = 0.0
    node_timings_ms: dict[str, float] = Field(default_factory=dict)
    models: dict[str, str] = Field(
        default_factory=dict,
        description="the trained components this run used, e.g. span_tagger: 'shipped (span-tagger-minilm-2ep)' "
        "or 'none (dictionary extractor)'",
    )
    warnings: list[str] = Field(default_factory=list)
