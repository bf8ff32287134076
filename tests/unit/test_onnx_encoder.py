"""An encoder exported to int8 ONNX (``jdgraph models quantize``): served through onnxruntime with the vectors of
its float32 source, its card measured on training data, and a damaged file refused with its rebuild command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jdgraph.catalog.embeddings import OnnxEmbeddings, make_embeddings, minilm_embeddings
from jdgraph.errors import InputError
from jdgraph.settings import EmbeddingSettings
from jdgraph.trained.artefacts import ArtefactError
from jdgraph.trained.onnx import ONNX_FILE, quantize_encoder

TEXTS = [
    "Senior Python developer",
    "manage budgets",
    "We are looking for a nurse to administer medication to patients and keep accurate records.",
    "Experience with PLC programming (Siemens S7) is a plus.",
]


INSTALLED: dict[str, Any] = {}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JDGRAPH_CACHE", str(folder))
        INSTALLED.update(quantize_encoder("minilm", "minilm-int8", sample=20, label_limit=100))
    return folder


def test_the_int8_encoder_gives_minilms_vectors_and_its_card_measures_agreement(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JDGRAPH_CACHE", str(cache))
    served = make_embeddings(EmbeddingSettings(provider="trained:minilm-int8"))
    assert isinstance(served, OnnxEmbeddings)
    assert served.model_id.startswith("jdgraph-trained:minilm-int8@")
    assert served.dimension == 384
    quantized, reference = served.embed_array(TEXTS), minilm_embeddings().embed_array(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-4)
    assert (quantized * reference).sum(axis=1).min() > 0.999  # 8-bit weights, float32 activations
    assert served.embed_array([]).shape == (0, 384)

    from jdgraph.trained.artefacts import read_card

    _, card = read_card("minilm-int8", "encoder")
    assert card == INSTALLED  # what the command reports is what the card says, its size included
    agreement = card["agreement_with_float32"]
    assert card["format"] == "onnx-int8" and card["quantization"]["method"] == "weights"
    assert agreement["titles_to_occupations"]["cases"] == 20 and agreement["titles_to_occupations"]["labels"] == 100
    assert 0.9 <= agreement["cosine_to_float32"]["min"] <= 1.0
    assert card["rebuild"] == "jdgraph models quantize minilm" and card["size_bytes"] > 10_000_000


def test_a_damaged_onnx_file_or_an_onnx_source_is_refused_with_the_command_that_rebuilds_it(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    monkeypatch.setenv("JDGRAPH_CACHE", str(copy))
    with pytest.raises(ArtefactError, match="already onnx-int8"):
        quantize_encoder("minilm-int8")
    onnx_file = copy / "models" / "minilm-int8" / ONNX_FILE
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    with pytest.raises(ArtefactError, match="jdgraph models quantize minilm"):
        make_embeddings(EmbeddingSettings(provider="trained:minilm-int8"))
    onnx_file.unlink()
    missing = r"lacks model\.int8\.onnx; rebuild it with `jdgraph models quantize minilm`"
    with pytest.raises(ArtefactError, match=missing):
        make_embeddings(EmbeddingSettings(provider="trained:minilm-int8"))
    with pytest.raises(InputError, match="unknown quantisation method"):
        quantize_encoder("minilm", "x", method="float8")


def test_an_onnx_encoder_takes_its_threads_from_omp_num_threads(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`jdgraph serve` splits the cores between its workers through OMP_NUM_THREADS; onnxruntime ignores that
    variable on its own, so the encoder's session must be told."""
    from jdgraph.trained.onnx import session_options

    monkeypatch.setenv("JDGRAPH_CACHE", str(cache))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    served = make_embeddings(EmbeddingSettings(provider="trained:minilm-int8"))
    assert isinstance(served, OnnxEmbeddings)
    served.embed_array(TEXTS[:1])
    assert served.encoder._session.get_session_options().intra_op_num_threads == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert session_options().intra_op_num_threads == 0  # onnxruntime's default: a thread per core
