"""One error hierarchy for jdgraph.

Every error a caller can act on derives from :class:`JdgraphError` and carries its context as attributes,
so the CLI can map it to an exit code and one precise line, and services can branch on the type.
"""

from __future__ import annotations


class JdgraphError(RuntimeError):
    """Base class of every error jdgraph raises on purpose.

    A RuntimeError because a LangGraph server (langgraph-api) shows a failed run's client the message of builtin
    error types only ("An internal error occurred" for any other): jdgraph's messages are written for the caller
    (no passwords, no JD text beyond what the caller sent), so they reach a server's client as they reach the CLI."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(JdgraphError):
    """The caller's input cannot be processed (empty query, binary data, oversized text...)."""

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConfigError(JdgraphError):
    """A setting is missing or malformed."""

    exit_code = 2

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class DatabaseError(JdgraphError):
    """The catalog database could not be reached or used."""

    exit_code = 3


class DatabaseUnreachableError(DatabaseError):
    """A connection to the configured server failed. ``target`` never includes the password."""

    def __init__(self, message: str, *, target: str) -> None:
        super().__init__(message)
        self.target = target


class DatabaseLockTimeoutError(DatabaseError):
    """A statement waited longer than its connection's ``lock_timeout`` for a lock (an import holding a table
    while it rebuilds its index); nothing was written."""


class MigrationError(DatabaseError):
    """A schema migration failed or the schema is newer than this code."""


class EmbeddingError(JdgraphError):
    """The embedding provider failed or disagrees with the catalog."""

    exit_code = 4


class EmbeddingMismatchError(EmbeddingError):
    """The configured embedding model is not the one the catalog's vectors were made with."""

    def __init__(
        self, message: str, *, catalog_model: str, catalog_dim: int, configured_model: str, configured_dim: int
    ) -> None:
        super().__init__(message)
        self.catalog_model = catalog_model
        self.catalog_dim = catalog_dim
        self.configured_model = configured_model
        self.configured_dim = configured_dim


class CatalogError(JdgraphError):
    """The catalog data is invalid (a bad starter file, a dangling link, an unknown slug)."""

    exit_code = 5


class CatalogDataError(CatalogError):
    """A taxonomy file is missing, malformed or truncated. ``file`` and ``line`` say where (line 0: the file as a
    whole); nothing of the import was written."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(where + message)
        self.file = file
        self.line = line


class CatalogImportInProgressError(CatalogError):
    """The catalog has no committed release yet: its first import is running. ``stage`` and ``percent`` say how
    far it got; try again when it finishes."""

    def __init__(self, message: str, *, catalog: str, stage: str, percent: float) -> None:
        super().__init__(message)
        self.catalog = catalog
        self.stage = stage
        self.percent = percent


class NotFoundError(CatalogError):
    """A named catalog entry or run does not exist."""

    def __init__(self, message: str, *, kind: str, key: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.key = key


class ReviewConflictError(CatalogError):
    """A review decision that contradicts the item's state (approving a rejected item, merging across kinds)."""

    exit_code = 7


class PromptError(JdgraphError):
    """A prompt template is missing or was rendered with a missing variable."""

    def __init__(self, message: str, *, prompt: str) -> None:
        super().__init__(message)
        self.prompt = prompt


class LLMError(JdgraphError):
    """A model call failed after its bounded retries, or its output could not be validated or repaired."""

    exit_code = 6

    def __init__(self, message: str, *, node: str, model: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.node = node
        self.model = model
        self.attempts = attempts


class LLMOutputError(LLMError):
    """The model answered, but its output did not validate against the schema (even after repair)."""


class GoldenError(InputError):
    """A golden file that does not validate; the message names the file and line."""


class EvalGateError(JdgraphError):
    """An evaluation metric is below its threshold or regressed beyond its tolerance (the CI gate)."""

    exit_code = 1
