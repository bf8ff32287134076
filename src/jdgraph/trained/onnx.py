"""An encoder as int8 ONNX, served through onnxruntime with no torch to import at run time; smaller than float32
(60 MB against 91 with 8-bit weights, 23 MB with dynamic int8), and faster only with dynamic int8, which changes
too many decisions to serve (below).

``jdgraph models quantize SOURCE`` exports a sentence encoder (the bundled MiniLM, ``minilm``, or a trained encoder
from the cache) to ONNX with its mean pooling and normalisation inside the graph, quantises it and installs it in the
cache as an encoder of format ``onnx-int8``, with a card that says how often its top-1 decisions agree with
float32's on training data. ``JDGRAPH_EMBEDDINGS=trained:ID`` serves it like any trained encoder.

Two methods (measured on the tuned encoder, 300 training titles against ESCO's 3,039 occupations; notes/s10):

- ``weights`` (the default): the layers' matrices as 8-bit blocks of 32 (onnxruntime's ``MatMulNBits``), activations
  in float32: 99.3% of top-1 decisions identical, cosine to float32 ≥ 0.9997; 60 MB (the word-piece table stays
  float32: int8 per channel there cost 1.6 points of agreement).
- ``dynamic``: weights and activations int8 (``quantize_dynamic``, one scale per channel; per tensor was worse):
  23 MB and faster, but only 86% of top-1 decisions identical (cosine ≥ 0.989: close labels swap). Keeping the
  feed-forward output layers in float32 reached 91%; no setting tried reached the 99% a served encoder must keep.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from jdgraph.errors import InputError
from jdgraph.trained import artefacts, data
from jdgraph.trained.data import sha256_of

FORMAT = "onnx-int8"
ONNX_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "onnx.json"
QUANTIZE_REBUILD = "jdgraph models quantize"
OPSET = 17
METHODS = ("weights", "dynamic")
WEIGHT_BLOCK = 32
AGREEMENT_SAMPLE = 2000
"""Training titles and ESCO skill descriptions each, whose top-1 decisions float32 and int8 are
compared for the card."""


def session_options() -> Any:
    """onnxruntime's settings for an encoder: its threads from ``OMP_NUM_THREADS`` where that is set, as torch
    takes them. onnxruntime itself ignores the variable and starts a thread per core, so the split ``jdgraph serve``
    makes between its workers (cores / workers each) would not reach an int8 encoder without this."""
    import onnxruntime  # deferred: only an ONNX encoder needs the native library

    options = onnxruntime.SessionOptions()
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1  # one graph run at a time per call; parallelism is inside the operators
    return options


class OnnxSentenceEncoder:
    """Mean-pooled, unit-length sentence vectors from an exported encoder folder; loads on first use."""

    def __init__(self, folder: Path, rebuild: str = QUANTIZE_REBUILD) -> None:
        self.folder = folder
        self.rebuild = rebuild
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        self.max_seq_length = int(config["max_seq_length"])
        self.dimension = int(config["dimension"])

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                # deferred: onnxruntime and tokenizers load native libraries; only an ONNX encoder needs them
                import onnxruntime
                from tokenizers import Tokenizer

                try:
                    tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER_FILE))
                    tokenizer.enable_truncation(max_length=self.max_seq_length)
                    tokenizer.no_padding()
                    self._session = onnxruntime.InferenceSession(
                        str(self.folder / ONNX_FILE), session_options(), providers=["CPUExecutionProvider"]
                    )
                except Exception as exc:  # onnxruntime and tokenizers raise their own types for a damaged file
                    raise artefacts.ArtefactError(
                        f"{self.folder} cannot be loaded ({exc}); rebuild it with `{self.rebuild}`"
                    ) from exc
                self._tokenizer = tokenizer
            return self._session, self._tokenizer

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        _, tokenizer = self._load()
        return [e.ids for e in tokenizer.encode_batch(list(texts))]

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """One forward pass over pre-tokenised texts (padded here to the longest)."""
        session, _ = self._load()
        width = max((len(x) for x in ids), default=0)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        out = session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        ids = self.token_ids(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self.encode_ids([ids[i] for i in chunk])
        return out


def source_model(source: str) -> tuple[Path, str]:
    """The sentence-transformers folder of ``minilm`` or of a trained float32 encoder in the cache, and its id."""
    from jdgraph.trained.encoder import base_model_path  # deferred: the base model's package imports its weights' path

    if source in ("minilm", "all-MiniLM-L6-v2"):
        return base_model_path(), "sentence-transformers/all-MiniLM-L6-v2"
    folder, card = artefacts.read_card(source, "encoder")
    if card.get("format", "sentence-transformers") != "sentence-transformers":
        raise artefacts.ArtefactError(f"{source!r} is already {card['format']}; quantize its float32 source instead")
    return folder / "model", source


def export_float32(model_path: Path, out: Path) -> tuple[int, int]:
    """``model_path`` (a sentence-transformers folder with a BERT body and mean pooling) as an ONNX graph that
    returns unit-length sentence vectors; returns the model's max sequence length and dimension."""
    # deferred: torch and transformers take seconds to import; only an export needs them
    import torch

    from jdgraph.trained.encoder import load_sentence_model

    sentence_model = load_sentence_model(model_path)
    body = sentence_model[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            tokens = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    mask = torch.ones((2, 8), dtype=torch.long)
    mask[1, 5:] = 0  # a padded row: the traced graph must keep the attention mask, not the no-padding shortcut
    example = (torch.ones((2, 8), dtype=torch.long), mask)
    tokens_axes = {0: "batch", 1: "tokens"}
    axes = {"input_ids": tokens_axes, "attention_mask": tokens_axes, "embedding": {0: "batch"}}
    # The tracer warns about Python conditions it fixes as constants (no causal mask, no extra padding): both hold for
    # every input of a bidirectional encoder, and the padded example row keeps the attention mask in the graph.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: the graph is a plain BERT, and it needs no onnxscript.
        torch.onnx.export(Pooled().eval(), example, str(out), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)  # fmt: skip
    return int(sentence_model.max_seq_length), int(sentence_model.get_embedding_dimension())


def quantize_encoder(
    source: str,
    model_id: str | None = None,
    *,
    sample: int = AGREEMENT_SAMPLE,
    label_limit: int | None = None,
    method: str = "weights",
    seed: int = 13,
    log: TextIO | None = None,
) -> dict[str, Any]:
    """Export ``source`` to int8 ONNX and install it in the cache as ``model_id`` (default ``SOURCE-int8``), with
    its card. Nothing is installed unless every file and the card are written."""
    if method not in METHODS:
        raise InputError(f"unknown quantisation method {method!r}; use one of {', '.join(METHODS)}")
    log = log or sys.stderr
    model_path, source_id = source_model(source)
    model_id = model_id or f"{source.replace('/', '-')}-int8"
    started = time.monotonic()
    with artefacts.atomic_model_dir(model_id) as folder, tempfile.TemporaryDirectory() as tmp:
        float_onnx = Path(tmp) / "model.onnx"
        max_len, dimension = export_float32(model_path, float_onnx)
        quantization = quantize(float_onnx, folder / ONNX_FILE, method)
        shutil.copyfile(model_path / TOKENIZER_FILE, folder / TOKENIZER_FILE)
        config = {"max_seq_length": max_len, "dimension": dimension}
        (folder / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
        print(f"quantize {model_id}: exported and quantised in {time.monotonic() - started:.0f}s", file=log, flush=True)
        agreement = measure_agreement(
            model_path, OnnxSentenceEncoder(folder), sample=sample, label_limit=label_limit, seed=seed
        )
        print(f"quantize {model_id}: against float32 {agreement}", file=log, flush=True)
        weights = model_path / "model.safetensors"
        card = {
            "model_id": model_id,
            "kind": "encoder",
            "format": FORMAT,
            "source": {"model_id": source_id, "weights_sha256": sha256_of(weights) if weights.is_file() else None},
            "quantization": quantization,
            "files": [ONNX_FILE, TOKENIZER_FILE, CONFIG_FILE],
            "onnx_sha256": sha256_of(folder / ONNX_FILE),
            "rebuild": f"{QUANTIZE_REBUILD} {source}",
            "agreement_with_float32": agreement,
            "total_time_s": round(time.monotonic() - started, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        card = artefacts.write_card(folder, card)
    return card


def quantize(float_onnx: Path, out: Path, method: str) -> dict[str, Any]:
    """Write ``float_onnx`` quantised by ``method`` to ``out``; returns what was done, for the card."""
    # deferred: onnxruntime's quantisers import onnx; only quantising needs them
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    # Its import calls logging.basicConfig(level=INFO): every library's info lines (a line per graph node) would
    # then reach stderr. Put the root logger back as it was and keep the quantiser's own lines to warnings.
    root.handlers[:], root.level = handlers, level
    logging.getLogger(MatMulNBitsQuantizer.__module__).setLevel(logging.WARNING)

    if method == "dynamic":
        quantize_dynamic(str(float_onnx), str(out), weight_type=QuantType.QInt8, per_channel=True)
        return {"method": "dynamic", "weights": "int8 per channel", "activations": "uint8 per tensor", "opset": OPSET}
    config = DefaultWeightOnlyQuantConfig(block_size=WEIGHT_BLOCK, is_symmetric=True, bits=8)
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(float_onnx)), bits=8, block_size=WEIGHT_BLOCK, is_symmetric=True, algo_config=config
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(out), False)
    return {"method": "weights", "weights": f"int8 in blocks of {WEIGHT_BLOCK} (MatMulNBits)", "activations": "float32",
            "opset": OPSET}  # fmt: skip


def measure_agreement(
    model_path: Path, quantized: OnnxSentenceEncoder, *, sample: int, label_limit: int | None = None, seed: int
) -> dict[str, Any]:
    """How often int8 and float32 make the same top-1 decision on TRAINING data (never dev): titles against ESCO
    occupations' preferred labels, skill descriptions against ESCO skills' preferred labels (all of them, or a
    sample of ``label_limit``); and the cosine between the two models' vectors of the same text."""
    from jdgraph.trained.encoder import encode, load_sentence_model  # deferred: torch, only to compare

    rng = random.Random(seed)
    reference = load_sentence_model(model_path)
    occupations = data.load_occupations()
    skills = data.load_skills()
    titles = sorted({t.title for t in data.load_titles()})
    described = sorted(u for u in skills if skills[u].description)
    occupation_labels = [occupations[u].preferred for u in sorted(occupations)]
    skill_labels = [skills[u].preferred for u in sorted(skills)]
    if label_limit:
        occupation_labels = rng.sample(occupation_labels, min(label_limit, len(occupation_labels)))
        skill_labels = rng.sample(skill_labels, min(label_limit, len(skill_labels)))
    tasks = {
        "titles_to_occupations": (rng.sample(titles, min(sample, len(titles))), occupation_labels),
        "skill_descriptions_to_skills": (
            [skills[u].description for u in rng.sample(described, min(sample, len(described)))],
            skill_labels,
        ),
    }
    out: dict[str, Any] = {}
    cosines: list[np.ndarray] = []  # each query's float32 vector against its int8 one
    for name, (queries, labels) in tasks.items():
        top, vectors = [], []
        for vectors_of in (lambda t: encode(reference, t), quantized.encode):
            q, lab = vectors_of(queries), vectors_of(labels)
            top.append((q @ lab.T).argmax(axis=1))
            vectors.append(q)
        cosines.append((vectors[0] * vectors[1]).sum(axis=1))
        same = float((top[0] == top[1]).mean())
        out[name] = {"top1_identical": round(same, 4), "cases": len(queries), "labels": len(labels)}
    all_cos = np.concatenate(cosines)
    out["cosine_to_float32"] = {"min": round(float(all_cos.min()), 4), "mean": round(float(all_cos.mean()), 4)}
    return out
