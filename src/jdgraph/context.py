"""Per-run settings and resources, read by nodes and tools through LangGraph's ``Runtime[Context]``.

Precedence: an explicit field value > the field's environment variable (its UPPER_CASE name, or the ``env`` its
metadata names) > ``JDGRAPH_MODEL`` (model fields only) > the default. With no model configured every LLM step
uses its deterministic implementation. Every threshold and weight the graph uses is a field here (the eval
runner's ``--set FIELD=VALUE`` sets them too); the role-scoring ones reach :mod:`jdgraph.matching.roles` through
:meth:`Context.scoring`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from jdgraph.errors import ConfigError
from jdgraph.matching.roles import ScoringParams
from jdgraph.settings import env_value

if TYPE_CHECKING:
    from jdgraph.catalog.queries import Catalog

_DEFAULT_SCORING = ScoringParams()


@dataclass(kw_only=True)
class Context:
    catalog: str = field(
        default="starter",
        metadata={
            "description": "which catalog to resolve against (starter, esco, onet, ...)",
            "env": "JDGRAPH_CATALOG",
        },
    )
    catalog_reader: Any = field(
        default=None,
        metadata={"description": "the open catalog the run reads (set by the API or the server from `catalog`)"},
    )
    span_tagger: str = field(
        default="shipped",
        metadata={
            "env": "JDGRAPH_SPAN_TAGGER",
            "description": "the trained skill-span tagger: 'shipped' (in the package), a model id in the cache "
            "(jdgraph models list), or 'none' (the catalog dictionary and phrase patterns only)",
        },
    )
    # The card's threshold (0.5) maximises span F1 on held-out training postings; the pipeline wants its evidence
    # right more than complete. On those postings (14 held out of SkillSpan's training file, never dev), with the
    # defaults below, 0.7 gives evidence precision 0.714 at knowledge recall 0.847 and skill recall 0.701 (0.6 and
    # 0.5 fall under 0.70 precision). tagged_accept and tagged_propose were set on the same postings: 0.75 links a
    # tagged span to a catalog skill (0.65 linked "embedded Linux" to a data engineer's span in the starter
    # catalog), 0.95 proposes 35 names there, all overlapping gold spans (0.9: 69 at 0.87, before the one-word rule).
    span_tagger_threshold: float = field(
        default=0.7,
        metadata={"description": "decoding threshold of the tagger (0: the one its card chose for span F1)"},
    )
    span_tagger_reader: Any = field(
        default=None,
        metadata={"description": "the loaded tagger the run uses (set by the API or the server from `span_tagger`)"},
    )
    parse_model: str = field(default="none", metadata={"description": "'provider:model' or 'none'"})
    extract_model: str = field(default="none", metadata={"description": "'provider:model' or 'none'"})
    adjudicate_model: str = field(default="none", metadata={"description": "'provider:model' or 'none'"})
    enrich_model: str = field(default="none", metadata={"description": "'provider:model' or 'none'"})
    embedding_accept: float = field(default=0.80, metadata={"description": "min cosine to accept an embedding alias"})
    tagged_accept: float = field(
        default=0.75,
        metadata={"description": "min cosine for a span the tagger marked to link to its nearest catalog skill"},
    )
    tagged_propose: float = field(
        default=0.95,
        metadata={"description": "min tagger confidence for an unmatched tagged span to be proposed as a new skill"},
    )
    alias_learn: float = field(default=0.88, metadata={"description": "embedding matches above this propose an alias"})
    extract_embedding: float = field(
        default=0.72, metadata={"description": "min cosine for a responsibility sentence to imply a skill"}
    )
    collision_margin: float = field(default=0.03, metadata={"description": "top-2 fused scores closer than this"})
    new_role_threshold: float = field(default=0.42, metadata={"description": "best fused score below: new role"})
    new_kra_threshold: float = field(default=0.45, metadata={"description": "sentence↔KRA below: new KRA"})
    title_weight: float = field(default=_DEFAULT_SCORING.title_weight, metadata={"description": "role fusion: title"})
    kra_weight: float = field(default=_DEFAULT_SCORING.kra_weight, metadata={"description": "role fusion: KRAs"})
    skill_weight: float = field(
        default=_DEFAULT_SCORING.skill_weight, metadata={"description": "role fusion: skill overlap"}
    )
    centroid_weight: float = field(
        default=_DEFAULT_SCORING.centroid_weight, metadata={"description": "role fusion: centroid"}
    )
    title_lexical_weight: float = field(
        default=_DEFAULT_SCORING.title_lexical_weight,
        metadata={"description": "share of word overlap (vs cosine) in an embedding-matched title's score"},
    )
    kra_top_n: int = field(default=_DEFAULT_SCORING.kra_top_n, metadata={"description": "KRA pairs averaged per role"})
    title_centroid_weight: float = field(
        default=_DEFAULT_SCORING.title_centroid_weight,
        metadata={"description": "share of the title score from the title's similarity to the role's centroid"},
    )
    skill_idf: bool = field(
        default=_DEFAULT_SCORING.skill_idf,
        metadata={"description": "weight skill overlap by how few roles list each skill"},
    )
    skill_candidates: int = field(
        default=_DEFAULT_SCORING.skill_candidates,
        metadata={"description": "roles found by skill overlap alone that are scored (the best by overlap)"},
    )
    centroid_candidates: int = field(
        default=_DEFAULT_SCORING.centroid_candidates,
        metadata={"description": "roles nearest the JD's vector that join the candidates"},
    )
    title_vote_weight: float = field(
        default=_DEFAULT_SCORING.title_vote_weight,
        metadata={"description": "role fusion: the vote of the coded vacancy titles nearest the JD's title"},
    )
    jd_title_vote_weight: float = field(
        default=0.0,
        metadata={
            "description": "share of a JD's title signal from the coded titles' vote (title_vote_weight is for a "
            "title searched alone); 0: on real ads (hahu-dev) the vote's coding conventions cost top-1"
        },
    )
    title_vote_with_aliases: bool = field(
        default=_DEFAULT_SCORING.title_vote_with_aliases,
        metadata={"description": "the catalog's title aliases near the title vote beside the coded vacancy titles"},
    )
    title_vote_k: int = field(
        default=_DEFAULT_SCORING.title_vote_k, metadata={"description": "coded vacancy titles that vote"}
    )
    title_vote_temperature: float = field(
        default=_DEFAULT_SCORING.title_vote_temperature,
        metadata={"description": "softmax temperature of the vote (lower: the nearest titles count more)"},
    )
    confidence_center: float = field(
        default=_DEFAULT_SCORING.confidence_center, metadata={"description": "fused score at confidence 0.5"}
    )
    confidence_slope: float = field(
        default=_DEFAULT_SCORING.confidence_slope, metadata={"description": "steepness of the confidence logistic"}
    )
    confidence_full_margin: float = field(
        default=_DEFAULT_SCORING.confidence_full_margin,
        metadata={"description": "lead over the runner-up that keeps full confidence"},
    )
    title_disagreement: float = field(
        default=0.9, metadata={"description": "a title match this close to another role than the leader: adjudicate"}
    )
    adjudicated_confidence_factor: float = field(
        default=0.9, metadata={"description": "rule adjudication scales the fused confidence by this"}
    )
    learn_dimension_min_skills: int = field(
        default=2, metadata={"description": "matched skills of one dimension needed to link it to the role"}
    )
    learn_dimension_min_confidence: float = field(
        default=0.6, metadata={"description": "decision confidence needed to learn a role↔dimension link"}
    )
    max_role_sentences: int = field(
        default=60, metadata={"description": "JD sentences compared with KRAs (the rest is boilerplate)"}
    )
    persist: bool = field(default=True, metadata={"description": "write run, links, queue and centroid"})
    keep_checkpoints: bool = field(
        default=False, metadata={"description": "keep a finished run's checkpoints (a failed run always keeps them)"}
    )
    llm_timeout_s: float = field(default=30.0, metadata={"description": "per-request model timeout"})
    parse_max_tokens: int = field(default=1200, metadata={"description": "answer cap of the parse call"})
    extract_max_tokens: int = field(default=1500, metadata={"description": "answer cap of the extract call"})
    adjudicate_max_tokens: int = field(
        default=600, metadata={"description": "answer cap of each adjudicate call (tool rounds and verdict)"}
    )
    enrich_max_tokens: int = field(default=800, metadata={"description": "answer cap of the enrich call"})
    structured_output_method: str = field(
        default="auto",
        metadata={
            "description": "how structured answers are requested: auto, json_schema, json_mode or function_calling "
            "(auto: json_schema, and a server that rejects it is detected and asked again with the next method)"
        },
    )
    llm_max_attempts: int = field(default=3, metadata={"description": "attempts per call on 429/5xx/timeout"})
    prompts_dir: str | None = field(default=None, metadata={"description": "folder overriding prompt files"})
    repeat_index: int = field(default=0, metadata={"description": "evals: which repeat (and recording) this run is"})

    def scoring(self) -> ScoringParams:
        """The role-scoring parameters of this run."""
        return ScoringParams(
            title_weight=self.title_weight,
            kra_weight=self.kra_weight,
            skill_weight=self.skill_weight,
            centroid_weight=self.centroid_weight,
            title_lexical_weight=self.title_lexical_weight,
            kra_top_n=self.kra_top_n,
            centroid_candidates=self.centroid_candidates,
            skill_candidates=self.skill_candidates,
            title_centroid_weight=self.title_centroid_weight,
            skill_idf=self.skill_idf,
            title_vote_weight=self.title_vote_weight,
            title_vote_with_aliases=self.title_vote_with_aliases,
            title_vote_k=self.title_vote_k,
            title_vote_temperature=self.title_vote_temperature,
            confidence_center=self.confidence_center,
            confidence_slope=self.confidence_slope,
            confidence_full_margin=self.confidence_full_margin,
        )

    def jd_scoring(self) -> ScoringParams:
        """The role-scoring parameters for a whole JD (the match node): :meth:`scoring` with the JD's vote share."""
        return replace(self.scoring(), title_vote_weight=self.jd_title_vote_weight)

    def resolve_catalog(self) -> Catalog:
        """The catalog this run reads: ``catalog_reader``, which whoever starts the run puts in its context
        (:mod:`jdgraph.api` and the server entry :mod:`jdgraph.server` open the one ``catalog`` names). Nodes and
        tools never open one themselves: a process-wide fallback hid which catalog a run read."""
        if self.catalog_reader is None:
            raise ConfigError(
                f"this run's context has no catalog: pass an open one, e.g. "
                f"graph.invoke(..., context=Context(catalog_reader=get_catalog({self.catalog!r}))) with get_catalog "
                "from jdgraph.catalog.registry, or classify through jdgraph.classify, which opens the named catalog",
                setting="catalog_reader",
            )
        return self.catalog_reader

    def resolve_span_tagger(self) -> Any:
        """The run's tagger (``span_tagger_reader``), or None when ``span_tagger`` is 'none'. Like the catalog, it
        is opened by whoever starts the run (:func:`jdgraph.api.run_context`, :mod:`jdgraph.server`); a run asked
        for a tagger and given none fails rather than silently taking the untrained path."""
        if self.span_tagger == "none":
            return None
        if self.span_tagger_reader is None:
            raise ConfigError(
                f"this run's context asks for span tagger {self.span_tagger!r} but holds none: pass a loaded one, "
                "e.g. Context(span_tagger_reader=get_span_tagger('shipped')) with get_span_tagger from "
                "jdgraph.trained.registry, or span_tagger='none' for the dictionary extractor",
                setting="span_tagger_reader",
            )
        return self.span_tagger_reader

    @classmethod
    def from_env(cls, **overrides: Any) -> Context:
        """Build a context: explicit overrides, then env vars, then defaults."""
        values: dict[str, Any] = {}
        default_model = env_value("JDGRAPH_MODEL")
        for f in fields(cls):
            if f.name in overrides and overrides[f.name] is not None:
                values[f.name] = overrides[f.name]
                continue
            if f.type in ("Any", Any):
                continue  # objects, never from the environment
            raw = env_value(f.metadata.get("env") or f.name.upper()) or (
                default_model if f.name.endswith("_model") else None
            )
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, raw, f.type)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown context fields: {sorted(unknown)}")
        return cls(**values)


def _coerce(name: str, raw: str, kind: Any) -> Any:
    kind = str(kind)
    try:
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("bool"):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
    except ValueError as exc:
        raise ConfigError(f"{name.upper()}={raw!r} is not a valid {kind}", setting=name.upper()) from exc
    return raw
