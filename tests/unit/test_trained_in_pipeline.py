"""The trained components as the pipeline uses them: the shipped compact tagger (and what a damaged one does), the
coded-title vote, the tagger's spans in extraction, the run's record of its path, and dev-suite comparisons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jdgraph.catalog.embeddings import make_embeddings
from jdgraph.context import Context
from jdgraph.errors import ConfigError, InputError
from jdgraph.evals.dev import DevCase, DevRun
from jdgraph.evals.dev_compare import compare_dev_runs
from jdgraph.graph.extract import Mention, _tagged_mentions, tagging_regions
from jdgraph.graph.text import Sentence
from jdgraph.matching.roles import ScoringParams, title_votes
from jdgraph.settings import EmbeddingSettings
from jdgraph.trained.artefacts import SHIPPED_WEIGHTS, ArtefactError
from jdgraph.trained.compact import CARD, SHIPPED, compact_state, expand_state, load_compact
from jdgraph.trained.data import Span

ADVERT = "Acme PLC is hiring. Experience with Python and project management. Nice: C# or Chef cooking."


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    return load_compact(SHIPPED)


def test_the_shipped_tagger_marks_skills(shipped) -> None:  # type: ignore[no-untyped-def]
    spans = shipped.tag(ADVERT)
    marked = {ADVERT[s.start : s.end] for s in spans}
    assert any("Python" in m for m in marked) and "project management" in marked, marked
    assert all(s.type in ("skill", "knowledge") for s in spans)
    assert shipped.name == json.loads((SHIPPED / CARD).read_text(encoding="utf-8"))["exported_from"]


def test_tagging_regions_read_the_requirements_with_context_and_find_the_same_spans(shipped) -> None:  # type: ignore[no-untyped-def]
    blurb = "About us: Acme PLC sells ice cream in forty cities and has done so since 1920, family owned.\n" * 4
    text = blurb + "\nRequirements:\n- Experience with Python\n- project management\n\nApply by email.\n"
    bullets = ("Experience with Python", "project management")
    sentences = [Sentence(b, text.index(b), text.index(b) + len(b), "Requirements", True) for b in bullets]
    regions = tagging_regions(text, sentences)
    # One region (the two bullets' contexts overlap), whole lines, with context around the bullets but not the
    # whole blurb.
    assert len(regions) == 1 and 0 < regions[0][0] < text.index("Requirements") and text[regions[0][0] - 1] == "\n"
    # Spans come back in the whole text's offsets. (Equivalence with tagging the whole text is measured on the
    # held-out training postings: the same 657 spans inside their requirement sentences.)
    inside = [text[s.start : s.end] for s in shipped.tag(text, 0.7, regions) if s.start >= regions[0][0]]
    assert "Python" in inside, inside
    assert shipped.tag(text, 0.7, []) == []


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "tagger"
    shutil.copytree(SHIPPED, folder)
    return folder


def test_a_damaged_weights_file_names_the_rebuild_command(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    data = bytearray((folder / SHIPPED_WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / SHIPPED_WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match=r"does not match its card.*jdgraph models train span-tagger"):
        load_compact(folder)


def test_a_missing_file_or_card_of_another_kind_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    (folder / CARD).write_text(json.dumps({**card, "kind": "encoder"}), encoding="utf-8")
    with pytest.raises(ArtefactError, match=r"'encoder'.*not this version's span tagger"):
        load_compact(folder)
    (folder / SHIPPED_WEIGHTS).unlink()
    with pytest.raises(ArtefactError, match=r"weights.safetensors is missing; train one"):
        load_compact(folder)
    (folder / CARD).write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtefactError, match="corrupt"):
        load_compact(folder)


def test_compact_form_round_trips_within_int8_precision() -> None:
    import torch

    layer = torch.nn.Linear(512, 256)
    stored = compact_state(layer)
    assert stored["weight.int8"].dtype.name == "int8" and stored["bias"].dtype.name == "float16"
    back = expand_state(stored)
    err = (torch.from_numpy(back["weight"]) - layer.weight.detach()).abs().max().item()
    assert err <= layer.weight.detach().abs().max().item() / 127 * 0.51 + 1e-6


def test_a_run_that_asks_for_a_tagger_and_holds_none_fails_clearly() -> None:
    with pytest.raises(ConfigError, match="span tagger 'shipped' but holds none"):
        Context().resolve_span_tagger()
    assert Context(span_tagger="none").resolve_span_tagger() is None


def test_the_vote_is_each_roles_share_of_the_softmax_weighted_neighbours_relative_to_the_leader() -> None:
    params = ScoringParams(title_vote_k=3, title_vote_temperature=0.1, title_vote_weight=1.0)
    votes = title_votes([(7, 0.9), (8, 0.9), (7, 0.9), (9, 0.1)], params)
    assert votes == pytest.approx({7: 1.0, 8: 0.5})  # shares 2/3 and 1/3, relative to the leader; the 4th is beyond k
    close = title_votes([(7, 0.9), (8, 0.8)], params)
    assert close[7] == 1.0 and close[8] == pytest.approx(1 / 2.718281828, rel=1e-3)
    assert title_votes([(7, 0.9)], ScoringParams(title_vote_weight=0.0)) == {}
    assert title_votes([], params) == {}


def _sentences(text: str) -> list[Sentence]:
    out, start = [], 0
    for part in text.split(". "):
        end = start + len(part)
        out.append(Sentence(part, start, end, None, False))
        start = end + 2
    return out


def _alias(text: str, sentences: list[Sentence], name: str) -> Mention:
    start = text.index(name)
    sentence = next(s for s in sentences if s.start <= start < s.end)
    return Mention(name, start, start + len(name), sentence, "alias", slug_hint=name.lower())


def test_dictionary_hits_stand_inside_tagged_spans_or_when_spelled_as_technology() -> None:
    sentences = _sentences(ADVERT)
    aliases = [_alias(ADVERT, sentences, n) for n in ("PLC", "Python", "C#", "Chef")]
    span_start = ADVERT.index("project management")
    spans = [Span(ADVERT.index("Python"), ADVERT.index("Python") + 6, "knowledge"),
             Span(span_start, span_start + len("project management"), "skill")]  # fmt: skip
    own, kept = _tagged_mentions(ADVERT, sentences, spans, aliases)
    assert {m.name for m in kept} == {"Python", "C#"}  # PLC (a company suffix) and Chef (a cook) need the tagger
    assert [(m.name, m.extracted_by) for m in own] == [("project management", "tagger")]


def test_a_tagged_span_loses_the_function_words_at_its_edges() -> None:
    sentences = _sentences(ADVERT)
    start = ADVERT.index("with Python and")
    own, _ = _tagged_mentions(ADVERT, sentences, [Span(start, start + len("with Python and"), "skill")], [])
    assert [(m.name, ADVERT[m.start : m.end]) for m in own] == [("Python", "Python")]


def test_a_tagged_span_outside_the_requirement_sentences_is_not_a_skill() -> None:
    sentences = _sentences(ADVERT)[1:]  # the first sentence is company blurb, not given to extraction
    spans = [Span(0, 8, "skill")]  # "Acme PLC"
    own, kept = _tagged_mentions(ADVERT, sentences, spans, [])
    assert own == [] and kept == []


def _run(suite: str, cases: list[DevCase]) -> DevRun:
    return DevRun(suite=suite, catalog="esco", catalog_sources={}, data="x.csv", data_source="", cases=len(cases),
                  metrics={}, wall_s=1.0, results=cases)  # fmt: skip


def test_dev_compare_gives_paired_deltas_and_the_flipped_cases() -> None:
    a = [DevCase(id=str(i), expected=["r"], ranked=["x", "r"]) for i in range(20)]
    b = [DevCase(id=str(i), expected=["r"], ranked=["r", "x"] if i < 10 else ["x", "r"]) for i in range(20)]
    cmp = compare_dev_runs(_run("titles-dev", a), _run("titles-dev", b), resamples=300)
    assert cmp.metrics["top1"].a == 0 and cmp.metrics["top1"].b == pytest.approx(0.5)
    assert 0 < cmp.metrics["top1"].ci_low <= 0.5 <= cmp.metrics["top1"].ci_high
    assert cmp.metrics["top5"].delta == 0
    assert [f["id"] for f in cmp.flipped] == [str(i) for i in range(10)]
    assert all(f["direction"] == "fixed" for f in cmp.flipped)
    with pytest.raises(InputError, match="different suites"):
        compare_dev_runs(_run("titles-dev", a), _run("hahu-dev", b))


def test_dev_compare_of_skillspan_runs_resamples_postings_with_their_counts() -> None:
    def case(i: int, found: int) -> DevCase:
        counts = {"tech:knowledge:gold": 4.0, "tech:knowledge:found": float(found), "tech:evidence": 4.0,
                  "tech:evidence_hit": float(found)}  # fmt: skip
        return DevCase(id=str(i), expected=[], detail={"counts": counts})

    cmp = compare_dev_runs(_run("skillspan-dev", [case(i, 1) for i in range(10)]),
                           _run("skillspan-dev", [case(i, 3) for i in range(10)]), resamples=200)  # fmt: skip
    m = cmp.metrics["tech_knowledge_recall"]
    assert (m.a, m.b) == (pytest.approx(0.25), pytest.approx(0.75)) and m.ci_low == pytest.approx(0.5)


def test_importing_dev_titles_as_examples_is_refused(tmp_path: Path) -> None:
    from jdgraph.catalog.importers.titles import read_title_examples

    dev = tmp_path / "data" / "dev"
    dev.mkdir(parents=True)
    (dev / "titles.csv").write_text("title,occupation_uri\nNurse,http://data.europa.eu/esco/occupation/x\n")
    with pytest.raises(InputError, match="dev files measure and are never training input"):
        read_title_examples(dev / "titles.csv")
    train = tmp_path / "titles.csv"
    train.write_text("title,occupation_uri\nNurse,http://data.europa.eu/esco/occupation/x\n,bad\n")
    with pytest.raises(InputError, match=r"titles.csv:3: empty title"):
        read_title_examples(train)


def test_models_list_and_show_print_the_shipped_tagger_and_name_an_unknown_one() -> None:
    from typer.testing import CliRunner

    from jdgraph.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["model_id"] == "shipped"
    table = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "span-tagger (int8 rows" in table.stdout and "None" not in table.stdout
    shown = runner.invoke(app, ["models", "show", "shipped"])
    assert shown.exit_code == 0 and '"weights_sha256"' in shown.stdout and '"training_data"' in shown.stdout
    missing = runner.invoke(app, ["models", "show", "no-such-model"])
    assert missing.exit_code != 0 and "no trained model 'no-such-model'" in missing.output


def test_a_one_word_or_fragment_alias_inside_a_longer_tagged_span_yields_to_the_span() -> None:
    text = "Maintain medical equipment daily. Follow systems and procedures. Know Python."
    sentences = _sentences(text)
    aliases = [_alias(text, sentences, n) for n in ("equipment", "and procedures", "Python")]

    def span(words: str) -> Span:
        return Span(text.index(words), text.index(words) + len(words), "skill")

    spans = [span("Maintain medical equipment"), span("systems and procedures"), span("Python")]
    own, kept = _tagged_mentions(text, sentences, spans, aliases)
    assert [m.name for m in kept] == ["Python"]  # a span that is exactly the word agrees with it
    assert [m.name for m in own] == ["Maintain medical equipment", "systems and procedures"]


def test_a_trained_encoder_that_is_not_there_names_the_command_that_builds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JDGRAPH_CACHE", str(tmp_path))
    with pytest.raises(ArtefactError, match="jdgraph models train encoder"):
        make_embeddings(EmbeddingSettings(provider="trained:encoder-minilm-esco"))


def test_a_model_outside_the_known_list_says_its_dimension() -> None:
    # Any sentence-transformers model other than the bundled one (a trained encoder, sentence-transformers:PATH):
    # its dimension once recursed without end (a probe embedding asked for the dimension again).
    from jdgraph.catalog.embeddings import SentenceTransformerEmbeddings, minilm_embeddings

    other = SentenceTransformerEmbeddings(minilm_embeddings().name_or_path, model_id="sentence-transformers:copy")
    assert other.dimension == 384 and other.embed_array(["python"]).shape == (1, 384)
