"""Trained-model artefacts: installed whole or not at all, and a missing or corrupt one names its rebuild command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from jdgraph.trained import artefacts


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JDGRAPH_CACHE", str(tmp_path))
    return tmp_path


def _install(model_id: str, kind: str = "encoder", payload: str = "w") -> None:
    with artefacts.atomic_model_dir(model_id) as folder:
        (folder / "weights.bin").write_text(payload, encoding="utf-8")
        artefacts.write_card(folder, {"model_id": model_id, "kind": kind, "files": ["weights.bin"]})


def test_a_failed_write_leaves_the_old_model_and_no_temporary_folder(cache: Path) -> None:
    _install("enc", payload="old")
    with pytest.raises(RuntimeError), artefacts.atomic_model_dir("enc") as folder:
        (folder / "weights.bin").write_text("half", encoding="utf-8")
        raise RuntimeError("killed while measuring")
    folder, _ = artefacts.read_card("enc", "encoder")
    assert (folder / "weights.bin").read_text(encoding="utf-8") == "old"
    assert [p.name for p in (cache / "models").iterdir()] == ["enc"]


def test_a_model_without_its_card_is_not_installed(cache: Path) -> None:
    with pytest.raises(artefacts.ArtefactError, match="card was not written"), artefacts.atomic_model_dir("x") as f:
        (f / "weights.bin").write_text("w", encoding="utf-8")
    assert not artefacts.model_dir("x").exists()


def test_replacing_a_model_swaps_it_whole_and_records_its_size(cache: Path) -> None:
    _install("enc", payload="old")
    _install("enc", payload="newer")
    folder, card = artefacts.read_card("enc", "encoder")
    assert (folder / "weights.bin").read_text(encoding="utf-8") == "newer"
    assert card["size_bytes"] == len("newer")
    assert [c["model_id"] for c in artefacts.list_models()] == ["enc"]


def test_missing_corrupt_or_wrong_kind_artefacts_name_the_rebuild_command(cache: Path) -> None:
    with pytest.raises(artefacts.ArtefactError, match=r"jdgraph models train span-tagger"):
        artefacts.read_card("span-tagger-minilm", "span-tagger")
    _install("enc")
    with pytest.raises(artefacts.ArtefactError, match=r"is a 'encoder', not a 'span-tagger'.*train span-tagger"):
        artefacts.read_card("enc", "span-tagger")
    (artefacts.model_dir("enc") / "weights.bin").unlink()
    with pytest.raises(artefacts.ArtefactError, match=r"lacks weights.bin.*train encoder"):
        artefacts.read_card("enc", "encoder")
    (artefacts.model_dir("enc") / artefacts.CARD).write_text("{truncated", encoding="utf-8")
    with pytest.raises(artefacts.ArtefactError, match=r"corrupt.*train encoder"):
        artefacts.read_card("enc", "encoder")


def test_model_ids_are_plain_folder_names(cache: Path) -> None:
    for bad in ("", "../x", ".hidden", "a/b"):
        with pytest.raises(artefacts.ConfigError):
            artefacts.model_dir(bad)


def test_progress_writes_whole_lines_for_a_log_file() -> None:
    out = io.StringIO()
    progress = artefacts.Progress(4, "encoder t", every_s=0.0, stream=out)
    for step in range(1, 5):
        progress.update(step, loss=1.0 / step)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()
    assert lines[-1].startswith("encoder t: 4/4 loss 0.2500") and "left" in lines[-1]
    json.dumps(lines)  # plain text, nothing a log viewer would choke on


@pytest.mark.parametrize(("kind", "loader"), [("encoder", "load_encoder"), ("span-tagger", "load_span_tagger")])
def test_corrupt_weights_are_an_error_naming_the_rebuild_not_a_silent_fallback(
    cache: Path, kind: str, loader: str
) -> None:
    from jdgraph.trained import train

    files = ["model/model.safetensors", "model/config.json"]
    with artefacts.atomic_model_dir("m") as folder:
        (folder / "model").mkdir()
        (folder / "model/model.safetensors").write_bytes(b"\x00not safetensors")
        (folder / "model/config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
        artefacts.write_card(folder, {"model_id": "m", "kind": kind, "files": files, "threshold": 0.5,
                                      "hyper_parameters": {}})  # fmt: skip
    with pytest.raises(artefacts.ArtefactError, match=rf"'m' cannot be loaded.*jdgraph models train {kind}"):
        getattr(train, loader)("m")
