"""The embedding wrappers: coalescing of concurrent calls and caching keep every row with its text."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from jdgraph.catalog.embeddings import CachedEmbeddings, CoalescingEmbeddings, ModelEmbeddings
from jdgraph.errors import EmbeddingError


class SlowHashEmbeddings(ModelEmbeddings):
    """A deterministic 8-d embedding of a text, slow enough for concurrent callers to pile up."""

    model_id = "test:hash"

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    @property
    def dimension(self) -> int:
        return 8

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        time.sleep(0.05)
        if self.fail_on is not None and self.fail_on in texts:
            raise EmbeddingError("model failed")
        return np.vstack([vector_of(t) for t in texts])


def vector_of(text: str) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, text)) + len(text))
    v = rng.normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def test_concurrent_calls_are_merged_and_each_caller_gets_its_own_rows() -> None:
    inner = SlowHashEmbeddings()
    coalescing = CoalescingEmbeddings(inner)
    results: dict[int, np.ndarray] = {}
    requests = {i: [f"text {i}-{j}" for j in range(i % 3 + 1)] + ["shared"] for i in range(8)}

    def call(i: int) -> None:
        results[i] = coalescing.embed_array(requests[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, texts in requests.items():
        assert np.allclose(results[i], np.vstack([vector_of(t) for t in texts]))
    assert len(inner.calls) < 8  # callers that arrived while the model worked shared a call
    assert all(len(call) == len(set(call)) for call in inner.calls)  # "shared" embedded once per model call


def test_a_model_failure_reaches_every_waiting_caller() -> None:
    coalescing = CoalescingEmbeddings(SlowHashEmbeddings(fail_on="boom"))
    errors: list[BaseException] = []

    def call(texts: list[str]) -> None:
        try:
            coalescing.embed_array(texts)
        except EmbeddingError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(["boom"],)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)  # nobody hangs
    assert len(errors) == 3
    assert coalescing.embed_array(["fine"]).shape == (1, 8)  # and the wrapper still works afterwards


def test_cache_without_database_embeds_each_text_once() -> None:
    inner = SlowHashEmbeddings()
    cached = CachedEmbeddings(inner)
    first = cached.embed_array(["a", "b", "a"])
    second = cached.embed_array(["b", "c"])
    assert np.allclose(first[0], first[2]) and np.allclose(first[1], second[0])
    assert [sorted(c) for c in inner.calls] == [["a", "b"], ["c"]]
    assert cached.stats["computed"] == 3


@pytest.mark.parametrize("budget", [64, 1024])
def test_length_batching_gives_the_same_vectors_as_one_plain_batch(budget: int) -> None:
    from jdgraph.catalog.embeddings import minilm_embeddings

    texts = ["Rust", "write unit tests", "Design and build asynchronous services in Rust " * 12, "SQL", "go"]
    model = minilm_embeddings()
    model.token_budget = budget
    plain = model._load().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(model.embed_array(texts), plain, atol=1e-5)
    batches = model._length_batches(model._load(), texts)
    assert sorted(i for b in batches for i in b) == list(range(len(texts)))


def test_token_attention_finds_the_tokens_that_name_the_query() -> None:
    """A query equal to one of ten word pieces scores near 1 by attention, while the pooled mean of the ten
    is far from it; at a high temperature attention spreads evenly and the score is the pooled mean's cosine."""
    from jdgraph.catalog.queries import token_attention

    tokens = np.vstack([vector_of(f"token {i}") for i in range(10)])
    named = tokens[3:4]
    score = token_attention(named, tokens, temperature=0.05)
    pooled = tokens.mean(axis=0)
    assert score.shape == (1,) and score[0] > 0.99
    assert float(named[0] @ (pooled / np.linalg.norm(pooled))) < 0.9
    other = vector_of("a query no token resembles")[None, :]
    even = token_attention(other, tokens, temperature=1e6)[0]
    assert even == pytest.approx(float(other[0] @ pooled) / float(np.linalg.norm(pooled)), abs=1e-5)


def test_wrappers_pass_token_vectors_through_and_a_pooled_only_provider_gives_none() -> None:
    inner = SlowHashEmbeddings()
    assert CachedEmbeddings(CoalescingEmbeddings(inner)).token_vectors("x") is None

    class WithTokens(SlowHashEmbeddings):
        def token_vectors(self, text: str) -> np.ndarray | None:
            return np.vstack([vector_of(w) for w in text.split()])

    tokens = CachedEmbeddings(CoalescingEmbeddings(WithTokens())).token_vectors("two words")
    assert tokens is not None and tokens.shape == (2, 8)
