"""``jdgraph models``: train, list, show and export the trained components (the skill-span tagger, the title
encoder). Training is seeded and reproducible and reports progress as whole lines (a terminal, a pipe and a log
file show the same); each model lands in the cache with its card, or not at all."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from jdgraph.cli.common import CatalogOption, console, handle_errors, open_catalog
from jdgraph.errors import ConfigError, InputError
from jdgraph.terminal import cell

ENCODER_STEPS = 500

models_app = typer.Typer(help="The trained components: a skill-span tagger and a title encoder.", no_args_is_help=True)


@models_app.command("train")
@handle_errors
def models_train(
    kind: Annotated[Literal["span-tagger", "encoder"], typer.Argument(help="Which component.")],
    model_id: Annotated[str | None, typer.Option(help="Its folder in the cache (default: the kind's id).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, max=20)] = None,
    lr: Annotated[float | None, typer.Option(min=1e-7, max=1e-2)] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, max=1024)] = None,
    seed: Annotated[int, typer.Option(help="The same seed gives the same model.")] = 13,
    limit: Annotated[int | None, typer.Option(min=1, help="Train on this many examples only (smoke runs).")] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(min=1, help="encoder: stop after this many batches (default 500, a third of an epoch)."),
    ] = None,
    dev: Annotated[bool, typer.Option(help="Measure the model on the dev suite for its card.")] = True,
    threads: Annotated[int | None, typer.Option(min=1, max=256, help="torch threads (default: all cores).")] = None,
    skills: Annotated[
        bool, typer.Option(help="encoder: also ESCO skills (alt label and description → preferred label).")
    ] = True,
    from_reviews: Annotated[
        bool,
        typer.Option(
            "--from-reviews",
            help="Also learn from the review queue's decisions on skills and aliases in --catalog: approved "
            "ones as skills (and as pairs for the encoder), rejected ones as not-skills.",
        ),
    ] = False,
    catalog: CatalogOption = None,
) -> None:
    """Train a component on ../shared/data/train and the ESCO taxonomy (never on data/dev) and install it in the
    cache with its model card. span-tagger: about 12 minutes on 2 cores (2 epochs); encoder: 500 batches, 21
    minutes on 2 quiet cores."""
    # deferred: torch and the training modules take seconds to import; list and show need none of them
    from jdgraph.trained.encoder import EncoderParams
    from jdgraph.trained.tagger import TaggerParams
    from jdgraph.trained.train import set_threads, train_encoder_artefact, train_tagger_artefact

    set_threads(threads)
    reviews = _review_decisions(catalog) if from_reviews else []
    if from_reviews and not reviews:
        raise InputError(
            f"--from-reviews: catalog {catalog or 'starter'!r} has no approved or rejected skill or alias to learn "
            "from (jdgraph review list --status approved)",
            field="from_reviews",
        )
    overrides: dict[str, Any] = {
        k: v for k, v in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size)) if v is not None
    }
    if kind == "encoder":
        # A whole epoch of the 97k pairs is 1,518 batches, over two hours on 2 cores: the model measured and
        # documented (README "Trained components") is the first 500.
        params = replace(EncoderParams(seed=seed, max_steps=max_steps or ENCODER_STEPS), **overrides)
        default_id = "encoder-minilm-esco" if skills else "encoder-minilm-titles"
        card = train_encoder_artefact(
            model_id or default_id, params, with_skills=skills, limit=limit, measure_dev=dev, reviews=reviews
        )
    else:
        tparams = replace(TaggerParams(epochs=2, lr=1e-4, seed=seed), **overrides)
        card = train_tagger_artefact(
            model_id or "span-tagger-minilm", tparams, limit=limit, measure_dev=dev, reviews=reviews
        )
    console.print_json(json.dumps(card))


def _review_decisions(catalog_name: str | None) -> list[Any]:
    """The catalog's decided skill and alias proposals, as the trainers take them (plain data: training reads
    no database)."""
    from jdgraph.catalog import service  # deferred: a catalog is opened only for --from-reviews
    from jdgraph.trained.reviews import decisions_from_queue

    catalog = open_catalog(catalog_name)
    items = [item.as_dict() for item in service.review_queue(catalog).decided_skill_items()]
    return decisions_from_queue(items, lambda slug: catalog.get_skill(slug).display_name)


@models_app.command("list")
@handle_errors
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The shipped tagger and encoder and every model in the cache, with size and when it was made."""
    from jdgraph.trained.artefacts import list_models  # deferred: numpy and the model code are not needed for --help
    from jdgraph.trained.compact import shipped_card, show_card
    from jdgraph.trained.compact_encoder import SHIPPED_ENCODER_NAME

    try:
        encoder = show_card(SHIPPED_ENCODER_NAME)
    except ConfigError as exc:
        encoder = {"model_id": SHIPPED_ENCODER_NAME, "error": str(exc)}
    cards = [shipped_card(), encoder, *list_models()]
    if as_json:
        print(json.dumps(cards, indent=2))
        return
    from jdgraph.context import Context  # deferred: --help needs no graph types

    runs_use = Context.from_env().span_tagger_threshold
    table = Table("model", "kind", "size", "created", "threshold: card / runs", title_justify="default")
    for card in cards:
        # A tagger's card holds the threshold training chose for span F1; runs decode at the context's
        # span_tagger_threshold, which favours precision (0 there means the card's).
        threshold = card.get("threshold")
        shown = f"{threshold} / {runs_use or threshold}" if threshold is not None else ""
        table.add_row(cell(card.get("model_id", "?")), cell(_kind(card)),
                      f"{card.get('size_bytes', 0) / 1e6:.1f} MB", cell(card.get("created", "")),
                      cell(shown))  # fmt: skip
    console.print(table)


def _kind(card: dict[str, Any]) -> str:
    kind = str(card.get("kind", card.get("error", "?")))
    details = [d for d in (card.get("format"), (card.get("quantization") or {}).get("method")) if d]
    return f"{kind} ({', '.join(details)})" if details else kind


@models_app.command("quantize")
@handle_errors
def models_quantize(
    source: Annotated[str, typer.Argument(help="minilm (the bundled encoder) or a trained encoder's id.")],
    model_id: Annotated[str | None, typer.Option(help="Its folder in the cache (default: SOURCE-int8).")] = None,
    sample: Annotated[int, typer.Option(min=10, help="Training titles and skill descriptions to compare on.")] = 2000,
    method: Annotated[
        Literal["weights", "dynamic"],
        typer.Option(help="weights: 8-bit weights, float32 activations; dynamic: both int8, less faithful."),
    ] = "weights",
) -> None:
    """Export an encoder to int8 ONNX (served through onnxruntime, without torch) and install it in the cache with a
    card saying how often its top-1 decisions match float32's on training data. Use it with
    JDGRAPH_EMBEDDINGS=trained:ID (and a catalog imported with it)."""
    from jdgraph.trained.onnx import quantize_encoder  # deferred: torch and onnx take seconds to import

    card = quantize_encoder(source, model_id, sample=sample, method=method)
    agreement = card["agreement_with_float32"]
    console.print(f"installed {card['model_id']} ({card['size_bytes'] / 1e6:.1f} MB); top-1 identical to float32: "
                  f"titles {agreement['titles_to_occupations']['top1_identical']}, skill descriptions "
                  f"{agreement['skill_descriptions_to_skills']['top1_identical']}")  # fmt: skip


@models_app.command("show")
@handle_errors
def models_show(
    model_id: Annotated[str, typer.Argument(help="A model id (jdgraph models list), shipped or shipped-encoder.")],
) -> None:
    """A model's card: training data with licences and hashes, hyper-parameters, dev metrics, time, size."""
    from jdgraph.trained.compact import show_card  # deferred: numpy and the model code are not needed for --help

    console.print_json(json.dumps(show_card(model_id)))


@models_app.command("export")
@handle_errors
def models_export(
    model_id: Annotated[str, typer.Argument(help="A span tagger or an encoder in the cache.")],
    to: Annotated[Path | None, typer.Option(help="Folder to write (default: the package's shipped model).")] = None,
) -> None:
    """Write a cached model in the compact form the package ships (a span tagger: int8 weights over the bundled
    MiniLM, about 11 MB; an encoder: float16 layers over it, about 22 MB): by default over the model of its kind
    the package ships, which a fresh install then uses."""
    # deferred: torch and the model code take seconds to import, which --help must not wait for
    from jdgraph.trained.compact import show_card

    if show_card(model_id).get("kind") == "encoder":
        from jdgraph.trained.compact_encoder import SHIPPED_ENCODER, export_compact_encoder

        card = export_compact_encoder(model_id, to or SHIPPED_ENCODER)
        same = card["top1_identical_to_float32_on_held_out_titles"]
        console.print(f"wrote {to or SHIPPED_ENCODER} ({card['size_bytes'] / 1e6:.1f} MB); top-1 occupations "
                      f"identical to the float32 encoder on held-out training titles: {same}")  # fmt: skip
        return
    from jdgraph.trained.compact import SHIPPED, export_compact

    card = export_compact(model_id, to or SHIPPED)
    same = card["spans_identical_to_float32_on_held_out_training"]
    console.print(f"wrote {to or SHIPPED} ({card['size_bytes'] / 1e6:.1f} MB); spans identical to the float32 "
                  f"model on held-out training postings: {same}")  # fmt: skip
