"""``python -m jdgraph.trained train encoder|span-tagger [options]`` and ``python -m jdgraph.trained list|show ID``.

A stand-in for ``jdgraph models ...`` until the CLI wires this package in (after the layout refactor, issue 20).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from jdgraph.errors import JdgraphError
from jdgraph.trained import artefacts
from jdgraph.trained.encoder import EncoderParams
from jdgraph.trained.tagger import TaggerParams
from jdgraph.trained.train import train_encoder_artefact, train_tagger_artefact


def _threads(n: int | None) -> None:
    if n:
        # deferred: torch takes seconds to import, and list or show need none of it
        import torch

        torch.set_num_threads(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jdgraph.trained")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a component and install it in the cache")
    train.add_argument("kind", choices=["encoder", "span-tagger"])
    train.add_argument("--model-id", help="folder name in the cache (default: the kind's default id)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--seed", type=int, default=13)
    train.add_argument("--no-hard-negatives", action="store_true")
    train.add_argument("--no-alt-labels", action="store_true")
    train.add_argument("--limit", type=int, help="train on this many examples only (smoke runs)")
    train.add_argument("--max-steps", type=int, help="encoder: stop after this many batches (seeded, reproducible)")
    train.add_argument("--no-dev", action="store_true", help="skip the dev measurement in the card")
    train.add_argument("--threads", type=int)
    sub.add_parser("list", help="trained models in the cache")
    show = sub.add_parser("show", help="a model's card")
    show.add_argument("model_id")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for card in artefacts.list_models():
                print(f"{card.get('model_id')}\t{card.get('kind')}\t{card.get('size_bytes', 0) / 1e6:.1f} MB\t"
                      f"{card.get('created', '')}")  # fmt: skip
            return 0
        if args.command == "show":
            folder = artefacts.model_dir(args.model_id) / artefacts.CARD
            if not folder.is_file():
                raise artefacts.ArtefactError(f"no trained model {args.model_id!r} in {folder.parent.parent}")
            print(folder.read_text(encoding="utf-8"), end="")
            return 0
        _threads(args.threads)
        if args.kind == "encoder":
            params = EncoderParams(seed=args.seed, hard_negatives=not args.no_hard_negatives, max_steps=args.max_steps)
            for name in ("epochs", "lr", "batch_size"):
                if getattr(args, name) is not None:
                    params = replace(params, **{name: getattr(args, name)})
            card = train_encoder_artefact(args.model_id or "encoder-minilm-titles", params,
                                          use_alt_labels=not args.no_alt_labels, limit=args.limit,
                                          measure_dev=not args.no_dev)  # fmt: skip
        else:
            tparams = TaggerParams(seed=args.seed)
            for name in ("epochs", "lr", "batch_size"):
                if getattr(args, name) is not None:
                    tparams = replace(tparams, **{name: getattr(args, name)})
            card = train_tagger_artefact(args.model_id or "span-tagger-minilm", tparams, limit=args.limit,
                                         measure_dev=not args.no_dev)  # fmt: skip
        print(json.dumps(card, indent=2, sort_keys=True))
        return 0
    except JdgraphError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
