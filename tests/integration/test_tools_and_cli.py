"""LangChain tools and the CLI end to end, against the session's catalog schema."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jdgraph.context import Context
from jdgraph.errors import ConfigError
from jdgraph.tools import CATALOG_TOOLS, lookup_skill, roles_for_skills, search_roles, skill_dimensions, tool_config

pytestmark = pytest.mark.integration


def test_tools_are_langchain_tools_with_schemas(catalog) -> None:
    names = {t.name for t in CATALOG_TOOLS}
    assert names == {
        "lookup_skill",
        "search_skills",
        "search_roles",
        "role_kras",
        "roles_for_skills",
        "skill_dimensions",
    }
    assert "term" in lookup_skill.args


def test_lookup_skill_tool_returns_pydantic_match(catalog) -> None:
    match = lookup_skill.invoke({"term": "Multi-threading"}, config=tool_config(Context(catalog_reader=catalog)))
    assert match.skill.slug == "multithreading" and match.match_via == "normalized"


def test_search_roles_and_overlap_tools(catalog) -> None:
    config = tool_config(Context(catalog_reader=catalog))
    roles = search_roles.invoke({"title_or_text": "Registered Nurse", "k": 3}, config=config)
    assert roles[0].slug == "registered-nurse"
    overlap = roles_for_skills.invoke({"skills": ["patient-care", "medication-administration"]}, config=config)
    assert overlap[0].role.slug == "registered-nurse"
    assert {d.slug for d in skill_dimensions.invoke({"skill": "unit-testing"}, config=config)} == {"software-testing"}


def test_a_tool_outside_a_run_says_how_to_give_it_a_catalog() -> None:
    """Tools never open a catalog themselves (the registry fallback hid which one a call read)."""
    with pytest.raises(ConfigError, match="tool_config"):
        lookup_skill.invoke({"term": "Rust"})


def _cli(catalog, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JDGRAPH_DB_SCHEMA": catalog.db.schema, "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=300,
    )


def test_cli_skill_search_json(catalog) -> None:
    out = _cli(catalog, "catalog", "search", "--kind", "skill", "--json", "Multi-threading")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["candidates"][0]["slug"] == "multithreading"
    assert data["candidates"][0]["match_via"] == "normalized"


def test_cli_batch_writes_one_line_per_input(catalog, tmp_path: Path) -> None:
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        "\n".join(
            json.dumps(x)
            for x in [{"id": "a", "query": "Rust Engineer"}, {"id": "b", "query": "Nurse"}, {"id": "c", "query": " "}]
        )
        + "\n{not json\n"
        + json.dumps({"id": "d", "query": "Data Engineer"})
        + "\n"
    )
    out = _cli(catalog, "catalog", "search", "--kind", "role", "--top", "3", "--batch", str(batch))
    assert out.returncode == 1, out.stderr  # some lines failed: said by the exit status, after every line ran
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line.get("id", line.get("line")) for line in lines] == ["a", "b", "c", 4, "d"]
    assert "2 of 5 lines failed" in out.stderr and lines[4]["candidates"]
    assert lines[1]["candidates"][0]["slug"] == "registered-nurse"
    assert lines[2]["error"] and lines[2]["candidates"] == []
    assert {"slug", "display_name", "source_id", "score"} <= set(lines[0]["candidates"][0])


def test_cli_classify_batch_keeps_order_and_reports_bad_lines(catalog, tmp_path: Path) -> None:
    rust = (Path(__file__).parents[2] / "examples" / "rust-developer.txt").read_text(encoding="utf-8")
    nurse = (
        "Registered Nurse\nResponsibilities:\n- Administer medication and monitor patient vital signs\n"
        "- Maintain accurate patient records\nRequirements:\n- Current RN license\n- 2+ years of ward experience"
    )
    batch = tmp_path / "jds.jsonl"
    lines_in = [
        {"id": "rust", "text": rust},
        {"id": "empty", "text": "   "},
        {"id": "nurse", "text": nurse, "title": "Registered Nurse"},
    ]
    batch.write_text("\n".join(json.dumps(x) for x in lines_in) + "\n", encoding="utf-8")
    out = _cli(catalog, "classify", "--no-persist", "--concurrency", "2", "--batch", str(batch))
    assert out.returncode == 1, out.stderr  # one line failed; the others are still written
    assert "1 of 3 lines failed" in out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["rust", "empty", "nurse"]
    assert lines[0]["result"]["decision"]["chosen_role"]["slug"] == "systems-software-engineer"
    assert "empty" in lines[1]["error"] and "result" not in lines[1]
    assert lines[2]["result"]["decision"]["chosen_role"]["slug"] == "registered-nurse"


def test_cli_classify_batch_reports_each_bad_line_and_classifies_the_good_ones(catalog, tmp_path: Path) -> None:
    """Wrong JSON types, a lone surrogate, bytes that are not UTF-8: each bad line is reported in place with its
    number, and the good lines are still classified (before, one such line aborted the batch with a traceback)."""
    nurse = (
        "Registered Nurse\nResponsibilities:\n- Administer medication and monitor patient vital signs\n"
        "- Maintain accurate patient records\nRequirements:\n- Current RN license\n- 2+ years of ward experience"
    )
    batch = tmp_path / "bad.jsonl"
    lines = [
        json.dumps({"id": "good-1", "text": nurse}).encode(),
        b'{"id": "number", "text": 42}',
        b'{"id": "list", "text": ["a", "b"]}',
        json.dumps({"id": "title-object", "text": nurse, "title": {"x": 1}}).encode(),
        b'{"id": "surrogate", "text": "Nurse \\ud800 text"}',
        b"\xff\xfe not utf-8",
        b'["not", "an", "object"]',
        b'{"id": "no-text"}',
        json.dumps({"id": 7, "text": nurse, "title": "Registered Nurse"}).encode(),
    ]
    batch.write_bytes(b"\n".join(lines) + b"\n")
    out = _cli(catalog, "classify", "--no-persist", "--batch", str(batch))
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "7 of 9 lines failed" in out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(got) == 9
    assert got[0]["id"] == "good-1" and got[0]["result"]["decision"]["chosen_role"]["slug"] == "registered-nurse"
    assert got[8]["id"] == "7" and got[8]["result"]["decision"]["chosen_role"]["slug"] == "registered-nurse"
    errors = {g["line"]: g["error"] for g in got[1:8]}
    assert "'text' must be a string, got int" in errors[2] and "got list" in errors[3]
    assert "title must be a string, got dict" in errors[4]
    assert "lone surrogate" in errors[5] and "not valid UTF-8" in errors[6]
    assert "got list" in errors[7] and "missing 'text' or 'description'" in errors[8]


def test_a_nul_or_lone_surrogate_in_any_field_of_a_batch_line_fails_that_line_only(catalog, tmp_path: Path) -> None:
    """Valid JSON with a NUL in the title ended a persisting batch with psycopg's UntranslatableCharacter (the lines
    after it got no output), and a lone surrogate in the id crashed it before any output (UnicodeEncodeError
    hashing the id). Every field is checked like the text: an error line for that line, the rest run, exit 1."""
    tag = os.urandom(4).hex()  # texts of this test only: the runs are persisted in the shared schema
    nurse = (
        f"Registered Nurse ({tag})\nResponsibilities:\n- Administer medication and monitor patient vital signs\n"
        "Requirements:\n- Current RN license\n- 2+ years of ward experience"
    )
    batch = tmp_path / "fields.jsonl"
    lines = [
        json.dumps({"id": "good-1", "text": nurse + " 1"}).encode(),
        json.dumps({"id": "nul-title", "text": nurse + " 2", "title": "Rust\u0000Dev"}).encode(),
        b'{"id": "w9\\udc00", "text": "Registered Nurse\\n- Care for patients"}',
        json.dumps({"id": "nul-company", "text": nurse + " 3", "company": "Acme\u0000"}).encode(),
        json.dumps({"id": "nul-id\u0000", "text": nurse + " 4"}).encode(),
        json.dumps({"id": "export", "title": "Registered Nurse", "description": nurse + " 5"}).encode(),
        json.dumps({"id": "neither", "title": "Registered Nurse"}).encode(),
        json.dumps({"id": "good-2", "text": nurse + " 6"}).encode(),
    ]
    batch.write_bytes(b"\n".join(lines) + b"\n")
    out = _cli(catalog, "classify", "--batch", str(batch))
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "5 of 8 lines failed" in out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert [g.get("id") for g in got] == ["good-1", None, None, None, None, "export", None, "good-2"]
    for g in (got[0], got[5], got[7]):
        assert g["result"]["decision"]["chosen_role"]["slug"] == "registered-nurse"
    errors = {g["line"]: g["error"] for g in got if "error" in g}
    assert errors[2] == "line 2: the title holds a NUL character (U+0000), which text cannot hold"
    assert errors[3] == "line 3: the id is not valid UTF-8 text (it holds a lone surrogate)"
    assert "company holds a NUL" in errors[4] and "id holds a NUL" in errors[5]
    assert "(missing 'text' or 'description')" in errors[7]


def test_cli_unreachable_database_names_host_not_password(catalog) -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://bob:hunter2@127.0.0.1:1/catalog"}
    out = subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", "db", "status"], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 3
    assert "127.0.0.1:1/catalog" in out.stderr
    assert "hunter2" not in out.stderr + out.stdout


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:hun@ter2/x@127.0.0.1:1/catalog",  # unencoded "@" and "/" in the password
        "postgresql://bob:hunter2@127.0.0.1:notaport/catalog",  # malformed port
        "postgresql://bob:hunter2@127.0.0.1:1/catalog?sslmode=bogus",  # malformed option
        "bob:hunter2@127.0.0.1",  # no scheme
        "host=127.0.0.1 port=1 password=hunter2 dbname=catalog user",  # malformed key-value DSN
    ],
)
def test_cli_never_prints_a_password_of_a_bad_database_url(catalog, url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    out = subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", "db", "status"], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode in (2, 3), out.stderr
    assert "Traceback" not in out.stderr
    assert "hunter2" not in out.stderr + out.stdout and "ter2" not in out.stderr + out.stdout


def test_cli_db_status_reports_server_and_version(catalog) -> None:
    out = _cli(catalog, "db", "status", "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["embedded"] is (os.environ.get("DATABASE_URL") is None)
    assert status["schema_version"] >= 2
    assert status["row_counts"]["skills"] >= 400
    assert status["health"] == "ok" and not any(status["missing_vectors"].values())


def test_db_status_finds_texts_without_a_vector_and_repairs_them(catalog) -> None:
    """An interrupted load left aliases without vectors while `catalog stats` showed full counts."""
    with catalog.db.connection() as conn:
        conn.execute(
            "UPDATE skill_aliases SET embedding = NULL WHERE id IN (SELECT id FROM skill_aliases ORDER BY id LIMIT 3)"
        )
    broken = json.loads(_cli(catalog, "db", "status", "--json").stdout)
    assert broken["missing_vectors"]["skill_aliases"] == 3 and broken["health"] != "ok"
    fixed = _cli(catalog, "db", "status", "--json", "--repair")
    assert fixed.returncode == 0, fixed.stderr
    status = json.loads(fixed.stdout)
    assert status["repaired"] == 3 and status["health"] == "ok"


_START = """
import sys, time
from pathlib import Path
import psycopg
from jdgraph.catalog.db import start_embedded_server
me, other = Path(sys.argv[1]), Path(sys.argv[2])
url = start_embedded_server()
with psycopg.connect(url) as conn:
    started = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()[0]
me.write_text(started)
deadline = time.time() + 120
while not other.exists() and time.time() < deadline:  # stay alive until the other process is up too
    time.sleep(0.1)
print(started, flush=True)
"""


def test_two_processes_starting_the_embedded_server_share_one(open_tmp: Path) -> None:
    tmp_path = open_tmp
    env = {**os.environ, "JDGRAPH_HOME": str(tmp_path / "home")}
    env.pop("DATABASE_URL", None)
    flags = [tmp_path / "a.started", tmp_path / "b.started"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _START, str(flags[i]), str(flags[1 - i])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    starts = {o[0].strip() for o in outs}
    assert len(starts) == 1  # the same postmaster start time: one server served both
    # The last process to exit stopped it cleanly: no postmaster.pid is left behind.
    assert not (tmp_path / "home" / "pgdata" / "postmaster.pid").exists()


def test_markup_and_escape_sequences_from_a_jd_print_inert(catalog, tmp_path: Path) -> None:
    """Rich markup in a title crashed classify after saving the run, and then every `runs list`; a [link=…]
    became a terminal hyperlink; escape sequences reached the terminal. All of it must print as text."""
    title = "[/] Nurse [link=http://evil.example]click[/link] \x1b[31mRED\x1b]0;pwned\x07"
    jd = tmp_path / "jd.txt"
    jd.write_text(
        "Registered Nurse\nResponsibilities:\n- Administer medication and monitor patient vital signs [bold]x\n"
        "- Maintain accurate patient records\nRequirements:\n- Current RN license\n- 2+ years of ward experience\n",
        encoding="utf-8",
    )
    shown = _cli(catalog, "classify", str(jd), "--title", title)
    listed = _cli(catalog, "runs", "list", "--limit", "50")
    for out in (shown, listed):
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout and "\x07" not in out.stdout  # no escape sequence, no OSC 8 hyperlink
    assert "[/] Nurse [link=http://evil.example]" in shown.stdout.replace("\n", "")
    assert "[/] Nurse" in listed.stdout


_START_AND_DIE = """
import os, psutil
from jdgraph.catalog.db import start_embedded_server
start_embedded_server()
for watcher in psutil.Process().children():  # the server's watcher would stop it: here it is killed too
    watcher.kill()
    watcher.wait()
os._exit(0)  # killed: no atexit, its pid stays in the list of the server's users
"""
_START_AND_EXIT = """
from jdgraph.catalog.db import start_embedded_server
start_embedded_server()
"""


def test_a_killed_user_does_not_keep_the_embedded_server_running_forever(open_tmp: Path) -> None:
    tmp_path = open_tmp
    env = {**os.environ, "JDGRAPH_HOME": str(tmp_path / "home")}
    env.pop("DATABASE_URL", None)
    pgdata = tmp_path / "home" / "pgdata"

    def run(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)

    died = run(_START_AND_DIE)
    assert died.returncode == 0, died.stderr
    users = tmp_path / "home" / "pgdata.users.json"
    stale = json.loads(users.read_text())
    assert len(stale) == 1 and (pgdata / "postmaster.pid").exists()  # the server outlived its only user
    clean = run(_START_AND_EXIT)
    assert clean.returncode == 0, clean.stderr
    # The next user pruned the dead pid, so on exit it knew it was the last one and stopped the server.
    assert json.loads(users.read_text() or "[]") == []
    assert not (pgdata / "postmaster.pid").exists()


def test_runs_show_takes_an_id_prefix(catalog) -> None:
    import jdgraph

    run = jdgraph.classify(
        "Registered Nurse\nResponsibilities:\n- Administer medication and monitor patient vital signs\n"
        "Requirements:\n- Current RN license\n- 2+ years of ward experience\n",
        catalog=catalog.name,
    )
    shown = _cli(catalog, "runs", "show", run.run_id[:13], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["run_id"] == run.run_id
    listed = _cli(catalog, "runs", "list")
    assert run.run_id in listed.stdout  # whole, never cut: it is what `runs show` takes
    assert _cli(catalog, "runs", "show", "zz-not-hex").returncode == 2
    missing = _cli(catalog, "runs", "show", "0000-0000")
    assert missing.returncode == 5 and "no run starts with 0000-0000" in missing.stderr  # catalog-data error


def test_runs_show_is_a_full_run_page_readable_at_80_columns(catalog) -> None:
    import jdgraph
    from tests.rust_jd import RUST_JD

    run = jdgraph.classify(RUST_JD, catalog=catalog.name)
    shown = _cli(catalog, "runs", "show", run.run_id[:8])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(x) for x in lines) <= 80, [x for x in lines if len(x) > 80]
    for section in ("Role", "Role signals", "Matched KRAs", "Parsed", "Enrichment", "Skills (", "Captured for review",
                    "Post-classification", "LLM calls (0)", "Timings", "Job description"):  # fmt: skip
        assert any(x.startswith(section) for x in lines), section
    assert "created 20" in shown.stdout and "Turing" in shown.stdout  # timestamps and the stored JD text
    assert "llm2_fired" not in shown.stdout and "{'parse'" not in shown.stdout  # no internals leak
    evidence = [x.strip() for x in lines if x.strip().startswith("“")]
    assert evidence and all(x.endswith("”") for x in evidence)  # evidence lines are whole or end in "…”"
    assert sum("already linked" in x for x in lines) <= 5  # repeated outcomes are counted, not listed
    # Phrases the tagger marked that no catalog skill matches are one line apart, not skills among the resolved.
    unmatched = [s.name for s in run.skills if s.tag == "unmatched"]
    assert unmatched, "the shipped tagger marks phrases of the Rust JD that the starter catalog lacks"
    assert any(x.startswith(f"Skills ({len(run.skills) - len(unmatched)})") for x in lines)
    assert "also asked for, no catalog skill" in shown.stdout
    assert not any(x.lstrip().startswith(("* " + unmatched[0], "- " + unmatched[0])) for x in lines)


# -- what a newcomer sees at 80 columns, piped ------------------------------------------------------------------
def _readable_at_80(out: str) -> list[str]:
    """The output's lines, checked: none padded with trailing spaces (a pipe keeps them), none over 80 columns."""
    lines = out.splitlines()
    assert [x for x in lines if x != x.rstrip()] == []
    assert [x for x in lines if len(x) > 80] == []
    return lines


def test_catalog_search_never_cuts_a_slug_and_says_its_stages_off_a_terminal(catalog) -> None:
    for kind, query in (("role", "Rust Engineer"), ("skill", "Multi-threading"), ("role", "Site Reliability")):
        shown = _cli(catalog, "catalog", "search", "--kind", kind, query)
        assert shown.returncode == 0, shown.stderr
        lines = _readable_at_80(shown.stdout)
        assert lines[1].split() == ["#", "score", "slug"]  # the header names the columns
        slugs = [c["slug"] for c in json.loads(_cli(catalog, "catalog", "search", "--kind", kind, "--json", query)
                                                  .stdout)["candidates"]]  # fmt: skip
        # Each slug whole on its line: what `review approve --as-alias-of` takes (a table cut "systems-software-e…").
        assert [x.split()[-1] for x in lines if x[:3].strip().isdigit()] == slugs
        assert "…" not in shown.stdout
        # Off a terminal (stderr is a pipe here) the wait is said in lines, not silence.
        assert "loading the embedding model…" in shown.stderr and "searching…" in shown.stderr
        assert "" not in shown.stderr.splitlines()  # a progress bar stopped off a terminal left a blank line


def test_runs_list_has_column_headers(catalog) -> None:
    import jdgraph

    jdgraph.classify("Registered Nurse\nRequirements:\n- Current RN license\n- 2+ years of ward experience\n",
                     catalog=catalog.name)  # fmt: skip
    listed = _cli(catalog, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    lines = _readable_at_80(listed.stdout)
    assert lines[0].split() == ["run", "id", "status", "conf", "created"]
    assert lines[1].strip() == "title → chosen role"


def test_run_page_wraps_with_hanging_indents_and_lists_countries_as_countries(catalog) -> None:
    import jdgraph
    from tests.rust_jd import RUST_JD

    run = jdgraph.classify(RUST_JD, catalog=catalog.name)
    assert [loc.city for loc in run.parsed.job_locations] == [None] * 9  # "India, Pakistan": no city "India"
    shown = _cli(catalog, "runs", "show", run.run_id)
    assert shown.returncode == 0, shown.stderr
    lines = _readable_at_80(shown.stdout)
    role = next(i for i, x in enumerate(lines) if x == "Role") + 1
    # At 80 columns the role line wraps: "confidence" kept its number (it was "… · confidence" / "0.95", the
    # continuation at column 0), and the continuation hangs under the line it continues.
    at = next(i for i in (role, role + 1) if "confidence" in lines[i])
    assert re.search(r"confidence \d\.\d\d$", lines[at]) and (at == role or lines[at].startswith("  confidence"))
    at = next(i for i, x in enumerate(lines) if x.startswith("  locations "))
    assert lines[at].startswith("  locations        India (IN, remote); Pakistan (PK, remote);")
    assert lines[at + 1].startswith(" " * 19) and lines[at + 1][19] != " "  # continued under the value


def test_eval_run_off_a_terminal_says_its_progress_on_stderr(catalog, tmp_path: Path) -> None:
    goldens = Path(__file__).parents[2] / "evals" / "goldens" / "starter.v1.jsonl"
    small = tmp_path / "mini.v1.jsonl"
    small.write_text("\n".join(goldens.read_text(encoding="utf-8").splitlines()[:2]) + "\n", encoding="utf-8")
    out = _cli(catalog, "eval", "run", str(small), "--out", str(tmp_path / "out"))
    assert out.returncode in (0, 1), out.stderr  # the gate on two cases may fail; the run itself must finish
    said = out.stderr.splitlines()
    assert "mini: 2 cases; loading the embedding model and opening the catalog…" in said
    assert "case 1/2" in said and "case 2/2" in said
