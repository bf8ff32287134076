"""Per-run settings, read by nodes through LangGraph's ``Runtime[Context]``.

Precedence: an explicit field value > the field's UPPER_CASE environment variable > ``JDGRAPH_MODEL`` (model
fields only) > the default. With no model configured every LLM step uses its deterministic implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from jdgraph.errors import ConfigError
from jdgraph.settings import env_value


@dataclass(kw_only=True)
class Context:
    parse_model: str = field(default="none", metadata={"description": "'provider:model' or 'none'"})
    extract_model: str = field(default="none", metadata={"description": "'provider:model' or 'none'"})
    adjudicate_model: str = field(default="none", metadata={"description": "'provider:model' or 'none'"})
    enrich_model: str = field(default="none", metadata={"description": "'provider:model' or 'none'"})
    embedding_accept: float = field(default=0.80, metadata={"description": "min cosine to accept an embedding alias"})
    alias_learn: float = field(default=0.88, metadata={"description": "embedding matches above this propose an alias"})
    extract_embedding: float = field(
        default=0.72, metadata={"description": "min cosine for a responsibility sentence to imply a skill"}
    )
    collision_margin: float = field(default=0.03, metadata={"description": "top-2 fused scores closer than this"})
    new_role_threshold: float = field(default=0.42, metadata={"description": "best fused score below: new role"})
    new_kra_threshold: float = field(default=0.45, metadata={"description": "sentence↔KRA below: new KRA"})
    persist: bool = field(default=True, metadata={"description": "write run, links, queue and centroid"})
    llm_timeout_s: float = field(default=30.0, metadata={"description": "per-request model timeout"})
    llm_max_attempts: int = field(default=3, metadata={"description": "attempts per call on 429/5xx/timeout"})
    prompts_dir: str | None = field(default=None, metadata={"description": "folder overriding prompt files"})
    repeat_index: int = field(default=0, metadata={"description": "evals: which repeat (and recording) this run is"})

    @classmethod
    def from_env(cls, **overrides: Any) -> Context:
        """Build a context: explicit overrides, then env vars, then defaults."""
        values: dict[str, Any] = {}
        default_model = env_value("JDGRAPH_MODEL")
        for f in fields(cls):
            if f.name in overrides and overrides[f.name] is not None:
                values[f.name] = overrides[f.name]
                continue
            raw = env_value(f.name.upper()) or (default_model if f.name.endswith("_model") else None)
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
