"""``jdgraph classify``: one job description, or a JSONL batch of them with one result line each."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from jdgraph.cli.common import CatalogOption, err_console, handle_errors, open_catalog, read_file
from jdgraph.cli.runs import print_result
from jdgraph.errors import InputError


@handle_errors
def classify_cmd(
    source: Annotated[str | None, typer.Argument(help="A JD file, or - for standard input.")] = None,
    title: Annotated[str | None, typer.Option(help="The posting's title, if known.")] = None,
    model: Annotated[str | None, typer.Option(help="provider:model for every LLM step, or none.")] = None,
    no_persist: Annotated[bool, typer.Option("--no-persist", help="Do not write to the catalog.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    batch: Annotated[
        Path | None, typer.Option(help='JSONL of {"id", "text", "title"?}; one JSON result per line.')
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Parallel runs with --batch.")] = 2,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="With --batch: lines saved before are not run again; cut-off runs continue."),
    ] = False,
    run_id: Annotated[str | None, typer.Option(help="A UUID: classifying again with it writes nothing twice.")] = None,
    input_id: Annotated[str | None, typer.Option(help="Your id for this input, stored on the run.")] = None,
    catalog: CatalogOption = None,
) -> None:
    """Classify a job description end to end."""
    from jdgraph.api import classify  # deferred: the API loads langgraph (seconds) that --help must not wait for

    opened = open_catalog(catalog)  # start the server, migrate, load the starter catalog once, before any worker
    overrides: dict[str, Any] = {"persist": not no_persist, "catalog": opened.name}
    if model:
        overrides.update(parse_model=model, extract_model=model, adjudicate_model=model, enrich_model=model)
    if batch is not None:
        _classify_batch(batch, overrides, concurrency, resume=resume)
        return
    if source is None:
        raise InputError("give a JD file, or - to read standard input")
    # Bytes, not text: check_input reads PDF and DOCX, and says clearly what else is wrong (binary, not UTF-8).
    if source == "-":
        text: bytes = sys.stdin.buffer.read()
    else:
        text = read_file(Path(source))
    result = classify(text, title=title, run_id=run_id, input_id=input_id, **overrides)
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print_result(result)


def _classify_batch(path: Path, overrides: dict[str, Any], concurrency: int, *, resume: bool = False) -> None:
    # deferred: the API loads langgraph (seconds) that --help must not wait for
    from jdgraph.api import BatchItem, batch_item, classify_many
    from jdgraph.catalog import service

    entries: list[tuple[int, Any]] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(read_file(path, "batch file ").split(b"\n"), 1):
        if not raw.strip():
            continue
        entry = batch_item(n, raw)
        if isinstance(entry, BatchItem):
            if entry.id in seen:  # an id names one input: a second line with it would be ambiguous on --resume
                entry = f"line {n}: id {entry.id!r} is also the id of line {seen[entry.id]}"
            else:
                seen[entry.id] = n
        entries.append((n, entry))
    items = [e for _, e in entries if isinstance(e, BatchItem)]
    failed = 0
    done_before: dict[str, int] = {}
    with Progress(console=err_console) as progress:
        task = progress.add_task("classifying", total=len(entries))
        outcomes = classify_many(items, concurrency=concurrency, resume=resume, **overrides)
        for n, entry in entries:  # in input order: a bad line's error where the line was
            if isinstance(entry, str):
                failed += 1
                line_out: dict[str, Any] = {"line": n, "error": entry}
            else:
                outcome = next(outcomes)
                line_out = outcome.line()
                if outcome.result is not None:
                    persistence = outcome.result.persistence
                    # 'persisted' when the store found the run saved before (a rerun without --resume)
                    again = persistence and service.persisted_before(persistence[0].outcome)
                    before = outcome.done_before or ("persisted" if again else None)
                    if before:
                        line_out["done_before"] = before
                        done_before[before] = done_before.get(before, 0) + 1
                else:  # one bad JD does not stop the batch, and is reported, not lost
                    failed += 1
                    line_out["line"] = n
            sys.stdout.write(json.dumps(line_out) + "\n")
            sys.stdout.flush()
            progress.advance(task)
    if done_before:
        said = {
            "saved": "were saved before (not run again)",
            "checkpointed": "were cut off before and continued from their last step",
            "persisted": "were saved before (run again, nothing written twice)",
        }
        for how, count in done_before.items():
            err_console.print(f"{count} of {len(entries)} lines {said[how]}; their output lines say done_before")
    if failed:
        err_console.print(
            f"[yellow]{failed} of {len(entries)} lines failed; their output lines carry an 'error'[/yellow]"
        )
        raise typer.Exit(1)
