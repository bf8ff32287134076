"""The design's import rules, checked on the source: storage only in catalog/, one role-scoring home, and nodes
that take their catalog from the runtime (so they run on an in-memory fake)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from langgraph.runtime import Runtime
from pydantic import BaseModel

import jdgraph
import jdgraph.matching.roles
from jdgraph.context import Context
from jdgraph.errors import ConfigError
from jdgraph.graph.nodes import parse
from jdgraph.graph.state import State
from tests.unit import import_rules as rules

SRC = Path(jdgraph.__file__).resolve().parent
SQL = re.compile(
    r"\b(SELECT\s+[\w*(]|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|COPY\s+\w+)"
)


def _modules_outside_catalog() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if "catalog" not in p.relative_to(SRC).parts]


def test_no_module_outside_catalog_imports_psycopg_or_holds_sql() -> None:
    offenders = []
    for path in _modules_outside_catalog():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("psycopg", "psycopg_pool", "pgvector") for n in names):
                    offenders.append(f"{path.name}:{node.lineno} imports {names}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                offenders.append(f"{path.name}:{node.lineno} holds SQL: {node.value[:60]!r}")
    assert offenders == []


def test_the_sql_check_would_catch_sql() -> None:
    assert SQL.search("SELECT id FROM roles") and SQL.search("insert into runs") is None
    assert SQL.search("UPDATE runs SET result = 1") and not SQL.search("select the best role")


def test_one_role_scoring_function_serves_graph_and_tools() -> None:
    definers = [
        p.name
        for p in SRC.rglob("*.py")
        if re.search(r"^def (role_signals|confidence|skill_overlap)\(", p.read_text(encoding="utf-8"), re.M)
    ]
    assert definers == ["roles.py"]
    match_node = importlib.import_module("jdgraph.graph.nodes.match")  # the module; the package's `match` is the node
    assert match_node.role_signals is jdgraph.matching.roles.role_signals
    tools_source = (SRC / "tools" / "catalog_tools.py").read_text(encoding="utf-8")
    assert "from jdgraph.matching.roles import search_roles" in tools_source


def test_every_scoring_weight_is_a_context_field() -> None:
    ctx = Context(title_weight=0.5, kra_weight=0.2, kra_top_n=2, confidence_center=0.5)
    params = ctx.scoring()
    assert (params.title_weight, params.kra_weight, params.kra_top_n, params.confidence_center) == (0.5, 0.2, 2, 0.5)
    assert set(jdgraph.matching.roles.ScoringParams.__dataclass_fields__) <= set(Context.__dataclass_fields__)


class FakeCatalog:
    """The slice of the catalog's read interface the parse node uses, in memory."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def skill_alias_rows(self) -> list[dict[str, object]]:
        self.calls.append("skill_alias_rows")
        return [
            {
                "alias": "AWS Certified Solutions Architect",
                "alias_norm": "awscertifiedsolutionsarchitect",
                "match_case": False,
                "slug": "aws-sa",
                "display_name": "AWS Certified Solutions Architect",
                "nature": "CERTIFICATION",
            },
        ]

    def role_title_texts(self) -> list[str]:
        return ["Cloud Architect"]

    def cached(self, name, build):  # type: ignore[no-untyped-def]
        return build()


def _as_json(update: dict[str, Any]) -> dict[str, Any]:
    """A node's state update as JSON (the state holds typed values)."""
    return {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in update.items()}


def test_parse_node_runs_on_an_in_memory_catalog() -> None:
    fake = FakeCatalog()
    jd = (
        "Cloud Architect\n\nWe are hiring a Cloud Architect with 5+ years of experience.\n"
        "Requirements:\n- AWS Certified Solutions Architect\n- Design cloud infrastructure\n"
        "- Lead migrations to AWS\nApply now."
    )
    out = _as_json(parse(State(jd_text=jd, title="Cloud Architect"), Runtime(context=Context(catalog_reader=fake))))
    assert fake.calls == ["skill_alias_rows"]
    assert out["parsed"]["jd_type"] == "pass"
    assert out["parsed"]["certifications"] == ["AWS Certified Solutions Architect"]
    assert out["parsed"]["experience"]["min"] == 5


def test_a_node_reads_its_catalog_from_the_runtime_only() -> None:
    """No process-wide fallback: a run whose context holds no catalog fails at once, saying how to give it one."""
    with pytest.raises(ConfigError, match="catalog_reader=get_catalog"):
        parse(State(jd_text="Cloud Architect\n- Design cloud infrastructure"), Runtime(context=Context()))


def test_public_python_api_is_what_the_readme_says() -> None:
    import subprocess
    import sys

    code = (
        "import jdgraph\n"
        "from jdgraph.graph import graph\n"
        "from langgraph.graph.state import CompiledStateGraph\n"
        "assert isinstance(graph, CompiledStateGraph)\n"
        "assert callable(jdgraph.classify) and callable(jdgraph.classify_many) and callable(jdgraph.resume)\n"
        "assert jdgraph.BatchItem('a', 'text').id == 'a'\n"
        "import jdgraph.graph.nodes\n"
        "from jdgraph.graph import graph as again\n"
        "assert again is graph\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    version = subprocess.run([sys.executable, "-m", "jdgraph.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("jdgraph ")


# Identifiers (not values) that f-string SQL may interpolate: module constants (column lists, ef_search settings)
# and the names of tables, indexes, columns and staging tables, which always come from constant tuples in the code.
_SQL_IDENTIFIERS = re.compile(r"^(_?[A-Z][A-Z0-9_]*|table|text_col|index|columns|stage|t|self\.schema|quoted)$")


def _sql_interpolations(path: Path) -> list[str]:
    """Every value an f-string passed to ``execute``/``copy`` interpolates that is not a known identifier."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("execute", "executemany", "copy") or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.BinOp | ast.Call) and not isinstance(first, ast.Call):
            found.append(f"{path.name}:{node.lineno} builds SQL with an operator")
        if isinstance(first, ast.JoinedStr):
            for part in first.values:
                if isinstance(part, ast.FormattedValue):
                    expr = ast.unparse(part.value)
                    if not _SQL_IDENTIFIERS.match(expr):
                        found.append(f"{path.name}:{node.lineno} interpolates {expr!r}")
    return found


def test_sql_values_are_always_parameters() -> None:
    """Values reach SQL only as parameters (%s): an f-string may splice in identifiers and constant column
    lists, never a value; no SQL is built with + or %."""
    offenders = [x for p in (SRC / "catalog").rglob("*.py") for x in _sql_interpolations(p)]
    assert offenders == []


def test_the_parameterised_sql_check_would_catch_a_spliced_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(conn, slug):\n    conn.execute(f\"SELECT id FROM roles WHERE slug = '{slug}'\")\n"
        '    conn.execute("SELECT 1 WHERE a = " + slug)\n',
        encoding="utf-8",
    )
    assert _sql_interpolations(bad) == ["bad.py:2 interpolates 'slug'", "bad.py:3 builds SQL with an operator"]


# -- the layout's import rules (issue 20), checked by tests/unit/import_rules.py on every import -----------------


@pytest.fixture(scope="module")
def findings() -> list[rules.Finding]:
    return rules.check(SRC)


@pytest.mark.parametrize("rule", rules.RULE_NAMES)
def test_the_package_keeps_the_rule(findings: list[rules.Finding], rule: str) -> None:
    assert [str(f) for f in findings if f.rule == rule] == []


# A small package that keeps every rule: each layer imports what it may, a lazy import says why.
CLEAN = {
    "__init__.py": (
        "def __getattr__(name):\n"
        "    # lazy: importing the package for its catalog must not build the graph first\n"
        "    from jdgraph import api\n\n"
        "    return getattr(api, name)\n"
    ),
    "errors.py": "class Error(Exception):\n    pass\n",
    "settings.py": "from jdgraph.errors import Error\n",
    "catalog/__init__.py": "",
    "catalog/db.py": "from jdgraph import settings\nfrom jdgraph.errors import Error\n",
    "context.py": "from jdgraph.catalog import db\n",
    "tools/__init__.py": "",
    "tools/catalog_tools.py": "from jdgraph import context\n",
    "graph/__init__.py": "",
    "graph/state.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from jdgraph.graph import nodes\n",
    "graph/nodes.py": "from jdgraph.tools import catalog_tools\n\nfrom . import state\n",
    "prompts/__init__.py": "",
    "api.py": (
        "from jdgraph.graph import nodes\n\n\n"
        "def classify():\n"
        "    from jdgraph.catalog import db  # deferred: the catalog opens when a run needs it\n\n"
        "    return db\n"
    ),
    "evals/__init__.py": "from jdgraph import api\n",
    "trained/__init__.py": "from jdgraph import settings\nfrom jdgraph.trained import data\n",
    "trained/data.py": "from jdgraph.errors import Error\n",
    "ui/__init__.py": "from jdgraph import api\n",
    "cli/__init__.py": "from jdgraph import api, ui\nfrom jdgraph.cli import common\n",
    "cli/common.py": "import json\n",
}

# Each rule, broken once: the files planted in the clean package, and where the checker must say it is broken.
PLANTED = {
    rules.STORAGE_RULE: (
        {"catalog/bad.py": "def f():\n    from jdgraph.tools import catalog_tools  # deferred: planted, lazy counts\n"},
        "catalog.bad:2",
    ),
    rules.TOOLS_RULE: (
        {"tools/bad.py": "import importlib\n\n\ndef f():\n    # deferred: planted, a dynamic import counts\n"
                         "    return importlib.import_module('jdgraph.graph.nodes')\n"},
        "tools.bad:6",
    ),
    rules.AGENT_RULE: ({"graph/bad.py": "from .. import api\n"}, "graph.bad:1"),
    rules.CLI_RULE: ({"ui/bad.py": "from jdgraph.cli.common import json\n"}, "ui.bad:1"),
    rules.ERRORS_RULE: ({"errors.py": "from jdgraph import prompts\n\n\nclass Error(Exception): ...\n"}, "errors:1"),
    rules.SETTINGS_RULE: ({"settings.py": "from jdgraph.errors import Error\nimport jdgraph.prompts\n"}, "settings:2"),
    rules.TRAINED_RULE: ({"trained/bad.py": "from jdgraph.catalog import db\n"}, "trained.bad:1"),
    rules.CYCLE_RULE: (
        {
            "graph/a.py": "from jdgraph.graph import b\n",
            "graph/b.py": "def f():\n    from jdgraph.graph import a  # deferred: planted, lazy closes the circle\n",
        },
        "graph.a, graph.b",
    ),
    rules.LONG_RULE: ({"catalog/big.py": "x = 1\n" * (rules.MAX_MODULE_LINES + 1)}, "catalog.big"),
    rules.LAZY_RULE: ({"catalog/lazy.py": "def f():\n    import json\n\n    return json\n"}, "catalog.lazy:2"),
}  # fmt: skip


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "jdgraph" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "jdgraph"


def test_the_clean_package_keeps_every_rule(tmp_path: Path) -> None:
    assert rules.check(_package(tmp_path, CLEAN)) == []


def test_every_rule_has_a_planted_violation() -> None:
    assert set(PLANTED) == set(rules.RULE_NAMES)


@pytest.mark.parametrize("rule", rules.RULE_NAMES)
def test_each_rule_catches_its_planted_violation(tmp_path: Path, rule: str) -> None:
    planted, where = PLANTED[rule]
    found = rules.check(_package(tmp_path, {**CLEAN, **planted}))
    assert [(f.rule, f.where) for f in found] == [(rule, where)], [str(f) for f in found]


def test_a_type_only_import_counts_for_the_layers_but_closes_no_cycle(tmp_path: Path) -> None:
    type_only = "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from jdgraph.tools import catalog_tools\n"
    found = rules.check(_package(tmp_path, {**CLEAN, "catalog/db.py": CLEAN["catalog/db.py"] + type_only}))
    assert [(f.rule, f.where) for f in found] == [(rules.STORAGE_RULE, "catalog.db:6")]


def test_a_lazy_import_says_why_on_its_line_above_it_or_atop_its_function(tmp_path: Path) -> None:
    """The convention, case by case: the lines of the functions whose imports must be reported are collected."""
    lines: list[str] = []
    bad: list[int] = []

    def add(*text: str, flagged: int | None = None) -> None:
        if flagged is not None:
            bad.append(len(lines) + 1 + flagged)
        lines.extend(text)

    add("def same_line():", "    import json  # deferred: only this path reads JSON", "")
    add("def above():", "    # deferred: the parser costs a second to import", "    # and only documents need it")
    add("    import json", "")
    add("def group():", "    # deferred: both come from an optional extra", "    import json", "    import csv", "")
    add("def whole():", '    """Doc."""', "    # LAZY: every import here waits for the first call")
    add("    import json", "    x = 1", "    import csv", "")
    add("# deferred: the whole helper runs in a child process", "def above_the_def():", "    import json", "")
    add("def nested():", "    # deferred: the outer function's reason covers the inner one", "    def inner():")
    add("        import json", "")
    add("def too_short():", "    import json  # deferred: heavy", "", flagged=1)
    add("def blank_line_between():", "    x = 1", "    # deferred: the parser costs a second to import", "", flagged=4)
    add("    import json", "")
    add("def marker_not_first():", "    import json  # json is deferred: on purpose here", "", flagged=1)
    add("def group_broken():", "    import json  # deferred: only this path reads JSON", "    x = 1", flagged=3)
    add("    import csv", "")
    add("def comment_below():", "    import json", "    # deferred: a reason after the import", "", flagged=1)
    add("def lambda_import():", "    return lambda: __import__('json')", "", flagged=1)
    files = {**CLEAN, "catalog/lazy.py": "\n".join(lines) + "\n"}
    found = rules.check(_package(tmp_path, files))
    assert [(f.rule, f.where) for f in found] == [(rules.LAZY_RULE, f"catalog.lazy:{n}") for n in bad]
