"""Environment-driven settings: the one place that reads ``os.environ``.

Precedence everywhere in jdgraph: an explicit argument beats an environment variable, which beats the default.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from jdgraph.errors import ConfigError

DEFAULT_EMBEDDINGS = "shipped"
"""The encoder tuned on titles and the taxonomy, shipped in the package (``minilm``: the untuned base model)."""
DEFAULT_SCHEMA = "jdgraph"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def jdgraph_home() -> Path:
    """Directory for the embedded server's data and other local state (``$JDGRAPH_HOME``)."""
    explicit = _env("JDGRAPH_HOME")
    home = Path(explicit).expanduser() if explicit else Path(platformdirs.user_data_dir("jdgraph"))
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def shared_dir() -> Path:
    """The read-only shared data folder (``$JDGRAPH_SHARED``, default ``../shared`` of the project root)."""
    explicit = _env("JDGRAPH_SHARED")
    if explicit:
        return Path(explicit).expanduser()
    return Path(__file__).resolve().parents[3] / "shared"


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the catalog lives. ``url`` is None for the embedded server."""

    url: str | None = None
    schema: str = DEFAULT_SCHEMA
    pool_min: int = 1
    pool_max: int = 8

    @classmethod
    def from_env(cls, *, url: str | None = None, schema: str | None = None) -> DatabaseSettings:
        schema = schema or _env("JDGRAPH_DB_SCHEMA") or DEFAULT_SCHEMA
        if not _SCHEMA_RE.match(schema):
            raise ConfigError(
                f"JDGRAPH_DB_SCHEMA={schema!r} is not a valid schema name (lower-case letters, digits, _)",
                setting="JDGRAPH_DB_SCHEMA",
            )
        pool_max = int(_env("JDGRAPH_DB_POOL_MAX") or 8)
        return cls(url=url or _env("DATABASE_URL"), schema=schema, pool_max=max(1, pool_max))


@dataclass(frozen=True)
class EmbeddingSettings:
    """Which embedding provider to use: ``shipped`` (the tuned encoder in the package, the default), ``minilm``
    (the bundled base model), ``sentence-transformers:NAME_OR_PATH``,
    ``trained:MODEL_ID`` (an encoder from ``jdgraph models train encoder`` or ``jdgraph models quantize``) or
    ``openai:MODEL`` (through langchain-openai, honouring ``OPENAI_BASE_URL``)."""

    provider: str = DEFAULT_EMBEDDINGS
    batch_size: int = 64

    @classmethod
    def from_env(cls, provider: str | None = None) -> EmbeddingSettings:
        return cls(provider=provider or _env("JDGRAPH_EMBEDDINGS") or DEFAULT_EMBEDDINGS)


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings.from_env)
    embeddings: EmbeddingSettings = field(default_factory=EmbeddingSettings.from_env)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(database=DatabaseSettings.from_env(), embeddings=EmbeddingSettings.from_env())


LOCAL_MODEL_PORT = 8089
"""Where ``jdgraph llm serve`` listens by default; ``local:MODEL`` models are looked for there."""

CHECKPOINT_TTL_DAYS = 7.0
"""An unfinished run's checkpoints older than this are reported by `db status` (and pruned by
`db prune-checkpoints`)."""


def local_model_base_url() -> str:
    """The OpenAI-compatible base URL of ``local:MODEL`` models (``$JDGRAPH_LOCAL_BASE_URL``)."""
    return _env("JDGRAPH_LOCAL_BASE_URL") or f"http://127.0.0.1:{LOCAL_MODEL_PORT}/v1"


def env_value(name: str) -> str | None:
    """Read one environment variable (stripped, empty = unset). Other modules call this, not os.environ."""
    return _env(name)
