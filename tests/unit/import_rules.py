"""The layout's import rules, checked on the source of a package: every import counts, those inside functions
(lazy ones) and dynamic ones (``importlib.import_module("…")``, ``__import__("…")`` with a constant name) included.

Modules are named by their dotted path below the package (``graph.nodes.parse``; ``graph`` for
``graph/__init__.py``; ``""`` for the package's own ``__init__``). An import names the module it loads: ``from X
import name`` counts as importing ``X.name`` when that is a module of the package, else ``X``; a name inside a module
counts as its module. Parent packages that Python runs on the way (``graph/__init__`` for ``graph.nodes``) are not
counted: only the module written.

The rules (:data:`RULES` and the three below them):

- the layers: storage (``catalog``) imports only ``catalog``, ``settings``, ``errors``, ``trained.data`` (the training
  files' readers: importing coded titles refuses a dev file by training's rule), ``trained.artefacts`` (where a
  trained encoder's weights and card are, for ``JDGRAPH_EMBEDDINGS=trained:ID``), ``trained.onnx`` (an int8
  encoder's runtime) and ``trained.compact_encoder`` (the tuned encoder the package ships, the default
  embeddings); ``tools`` import no ``graph``, ``api``, face or ``evals``; the agent (``graph``, ``context``,
  ``matching``, ``prompts``, ``tools``) imports no face (:data:`FACE`), ``evals`` or ``api``; nothing outside ``cli``
  imports ``cli``; ``errors`` imports nothing of the package and ``settings`` only ``errors``; ``trained`` imports
  only ``trained``, ``settings`` and ``errors``. These count imports under ``if TYPE_CHECKING:`` too (knowing a type
  is knowing the module).
- no import cycle: no group of modules that import each other, directly or round a circle (Tarjan's strongly
  connected components), through imports that run: ``if TYPE_CHECKING:`` imports never run and an arrow to the
  package's own ``__init__`` (``import jdgraph``, where its lazy public names live) is not followed.
- no module over :data:`MAX_MODULE_LINES` lines.
- a lazy import says why (:data:`DEFERRED`): every import inside a function, of any module, carries a comment that
  begins ``deferred:`` or ``lazy:`` (any case) followed by a reason of at least three words, either on the import's
  own lines, or in the comment lines directly above it (no blank or code line between), or at the top of its
  function (comment lines directly above the ``def``, or between the ``def`` line and the function's first statement
  after its docstring), which covers every import in that function. An import on the line right after a covered
  import in the same block shares its comment (a group of imports, one reason).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeGuard

MAX_MODULE_LINES = 600
DEFERRED = re.compile(r"^#\s*(deferred|lazy):\s*\S+(\s+\S+){2,}", re.IGNORECASE)
"""The comment that lets an import sit inside a function: ``# deferred: <why, three words or more>``."""

FACE = ("cli", "ui", "runview", "terminal", "localmodel")
"""The command line, the web page, and what only they use (a run's view, terminal output, the local model server)."""
AGENT = ("graph", "context", "matching", "prompts", "tools")

STORAGE_RULE = "storage knows no graph, tools or face"
TOOLS_RULE = "tools know no graph"
AGENT_RULE = "the agent knows no face or evals"
CLI_RULE = "the library knows no CLI"
ERRORS_RULE = "errors import nothing of the package"
SETTINGS_RULE = "settings import only errors"
TRAINED_RULE = "trained imports only settings and errors"
CYCLE_RULE = "no import cycle"
LONG_RULE = f"no module over {MAX_MODULE_LINES} lines"
LAZY_RULE = "a lazy import says why"
RULE_NAMES = [
    STORAGE_RULE,
    TOOLS_RULE,
    AGENT_RULE,
    CLI_RULE,
    ERRORS_RULE,
    SETTINGS_RULE,
    TRAINED_RULE,
    CYCLE_RULE,
    LONG_RULE,
    LAZY_RULE,
]


@dataclass(frozen=True, order=True)
class Import:
    importer: str
    line: int
    imported: str
    lazy: bool = False
    """Inside a function."""
    type_only: bool = False
    """Under ``if TYPE_CHECKING:``: never runs."""


@dataclass(frozen=True)
class Finding:
    rule: str
    where: str
    """``module:line`` (a cycle: its modules; a long module: its name)."""
    what: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.where} {self.what}"

    def key(self) -> tuple[str, str, int, str]:
        """By rule, module and line (``api:39`` before ``api:100``)."""
        module, _, line = self.where.partition(":")
        return (self.rule, module, int(line) if line.isdigit() else 0, self.what)


def _in(module: str, *parts: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in parts)


@dataclass(frozen=True)
class Rule:
    name: str
    applies: Callable[[str], bool]
    """To an importer."""
    forbidden: Callable[[str], bool]
    """Of what it imports."""


RULES = [
    Rule(STORAGE_RULE, lambda m: _in(m, "catalog"),
         lambda t: not _in(t, "catalog", "settings", "errors", "trained.data", "trained.artefacts",
                            "trained.onnx", "trained.compact_encoder")),
    Rule(TOOLS_RULE, lambda m: _in(m, "tools"), lambda t: _in(t, "graph", "api", *FACE, "evals")),
    Rule(AGENT_RULE, lambda m: _in(m, *AGENT), lambda t: _in(t, *FACE, "evals", "api")),
    Rule(CLI_RULE, lambda m: not _in(m, "cli"), lambda t: _in(t, "cli")),
    Rule(ERRORS_RULE, lambda m: m == "errors", lambda t: True),
    Rule(SETTINGS_RULE, lambda m: m == "settings", lambda t: t != "errors"),
    Rule(TRAINED_RULE, lambda m: _in(m, "trained"), lambda t: not _in(t, "trained", "settings", "errors")),
]  # fmt: skip


class Source:
    """One module's text, tree and comments."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.text = path.read_text(encoding="utf-8")
        self.lines = self.text.splitlines()
        self.tree = ast.parse(self.text, filename=str(path))

    @cached_property
    def comments(self) -> dict[int, str]:
        found = {}
        for tok in tokenize.generate_tokens(io.StringIO(self.text).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0]] = tok.string
        return found

    def _comment_only(self, line: int) -> bool:
        return 1 <= line <= len(self.lines) and self.lines[line - 1].lstrip().startswith("#")

    def marked(self, lines: Iterable[int]) -> bool:
        return any(DEFERRED.match(self.comments.get(n, "")) for n in lines)

    def marked_above(self, line: int) -> bool:
        """A marker in the comment lines directly above ``line``."""
        above = line - 1
        while self._comment_only(above):
            if self.marked([above]):
                return True
            above -= 1
        return False


class Package:
    """The modules of the package at ``root`` and every import among them."""

    def __init__(self, root: Path, package: str = "jdgraph") -> None:
        self.root = root
        self.package = package
        self.sources: dict[str, Source] = {}
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts)
            self.sources[name] = Source(name, path)

    # -- imports ----------------------------------------------------------------------------------------------------

    def _local(self, dotted: str) -> str | None:
        if dotted == self.package:
            return ""
        return dotted[len(self.package) + 1 :] if dotted.startswith(self.package + ".") else None

    def _targets(self, source: Source, node: ast.AST) -> list[str]:
        """The dotted names an import node loads (of any package)."""
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                is_package = source.path.name == "__init__.py"
                base = source.name.split(".") if source.name else []
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([self.package, *base, *([node.module] if node.module else [])])
            else:
                stem = node.module or ""
            names = [f"{stem}.{a.name}" for a in node.names if a.name != "*"]
            return sorted({n if self._local(n) in self.sources else stem for n in names} or {stem})
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            if func in ("importlib.import_module", "import_module", "__import__"):
                return [str(node.args[0].value)]
        return []

    @cached_property
    def imports(self) -> list[Import]:
        """Every import of a module of the package by a module of the package, once per line and target."""
        found: set[Import] = set()
        for source in self.sources.values():
            for node, lazy, type_only in _walk(source.tree):
                for target in self._targets(source, node):
                    local = self._local(target)
                    if local is None:
                        continue
                    while local and local not in self.sources:  # a name inside a module: the module
                        local = local.rpartition(".")[0]
                    if local != source.name:
                        found.add(Import(source.name, node.lineno, local, lazy, type_only))
        return sorted(found)

    # -- the rules --------------------------------------------------------------------------------------------------

    def layer_findings(self) -> list[Finding]:
        return [
            Finding(rule.name, f"{i.importer}:{i.line}", f"imports {i.imported or self.package}")
            for rule in RULES
            for i in self.imports
            if rule.applies(i.importer) and rule.forbidden(i.imported)
        ]

    def cycles(self) -> list[list[str]]:
        """Strongly connected groups of more than one module (Tarjan), each sorted, through imports that run."""
        graph: dict[str, set[str]] = {m: set() for m in self.sources}
        for i in self.imports:
            if i.imported and not i.type_only:
                graph[i.importer].add(i.imported)
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        groups: list[list[str]] = []

        def visit(v: str) -> None:
            index[v] = low[v] = len(index)
            stack.append(v)
            on_stack.add(v)
            for w in sorted(graph[v]):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

        for v in graph:
            if v not in index:
                visit(v)
        return sorted(groups)

    def cycle_findings(self) -> list[Finding]:
        findings = []
        for group in self.cycles():
            members = set(group)
            arrows = [f"{i.importer}:{i.line} → {i.imported}" for i in self.imports
                      if i.importer in members and i.imported in members and not i.type_only]  # fmt: skip
            findings.append(Finding(CYCLE_RULE, ", ".join(group), f"import each other ({'; '.join(arrows)})"))
        return findings

    def long_findings(self) -> list[Finding]:
        return [
            Finding(LONG_RULE, name or self.package, f"has {len(source.lines)} lines")
            for name, source in self.sources.items()
            if len(source.lines) > MAX_MODULE_LINES
        ]

    def lazy_findings(self) -> list[Finding]:
        findings = []
        for source in self.sources.values():
            covered: set[ast.AST] = set()  # imports are met in the order of their block: a group's first comes first
            for node, functions, previous in _lazy_imports(source.tree):
                own = range(node.lineno, (node.end_lineno or node.lineno) + 1)
                if (
                    source.marked(own)
                    or source.marked_above(node.lineno)
                    or any(_function_marked(source, f) for f in functions)
                    or (previous in covered and previous is not None and previous.end_lineno == node.lineno - 1)
                ):
                    covered.add(node)
                    continue
                where = f"{source.name or self.package}:{node.lineno}"
                findings.append(Finding(LAZY_RULE, where, f"`{ast.unparse(node)}` has no comment saying why"))
        return findings

    def findings(self) -> list[Finding]:
        """What breaks the rules, every rule."""
        found = {*self.layer_findings(), *self.cycle_findings(), *self.long_findings(), *self.lazy_findings()}
        return sorted(found, key=Finding.key)


def check(root: Path, package: str = "jdgraph") -> list[Finding]:
    return Package(root, package).findings()


# -- walking the tree -------------------------------------------------------------------------------------------

_FUNCTION = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
ImportNode = ast.Import | ast.ImportFrom | ast.Call
"""An import: a statement, or a call of ``importlib.import_module`` or ``__import__`` with a constant name."""


def _is_import(node: ast.AST) -> TypeGuard[ImportNode]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    return (
        isinstance(node, ast.Call)
        and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
    )


def _type_checking(node: ast.If) -> bool:
    return ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _walk(tree: ast.AST) -> Iterator[tuple[ImportNode, bool, bool]]:
    """Every import node, whether it is inside a function, and whether it is under ``if TYPE_CHECKING:``."""

    def go(node: ast.AST, lazy: bool, type_only: bool) -> Iterator[tuple[ImportNode, bool, bool]]:
        if _is_import(node):
            yield node, lazy, type_only
        for child in ast.iter_child_nodes(node):
            in_checking = type_only or (isinstance(node, ast.If) and _type_checking(node) and child in node.body)
            yield from go(child, lazy or isinstance(node, _FUNCTION), in_checking)

    yield from go(tree, False, False)


def _lazy_imports(tree: ast.AST) -> Iterator[tuple[ImportNode, list[ast.AST], ast.stmt | None]]:
    """Every import inside a function: the node, its enclosing functions (innermost last), and the statement just
    before it in its block (None when it is the first, or not a statement: a dynamic import in an expression)."""

    def go(node: ast.AST, functions: list[ast.AST]) -> Iterator[tuple[ImportNode, list[ast.AST], ast.stmt | None]]:
        inner = [*functions, node] if isinstance(node, _FUNCTION) else functions
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            previous: ast.stmt | None = None
            for stmt in block:
                if inner and isinstance(stmt, ast.Import | ast.ImportFrom):
                    yield stmt, inner, previous
                previous = stmt if isinstance(stmt, ast.stmt) else None
        for child in ast.iter_child_nodes(node):
            if inner and isinstance(child, ast.Call) and _is_import(child):
                yield child, inner, None
            yield from go(child, inner)

    yield from go(tree, [])


def _function_marked(source: Source, function: ast.AST) -> bool:
    if isinstance(function, ast.Lambda):
        return False
    assert isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
    top = min([function.lineno, *(d.lineno for d in function.decorator_list)])
    if source.marked_above(top):
        return True
    body = function.body
    first = body[1] if len(body) > 1 and _is_docstring(body[0]) else body[0]
    return source.marked(range(function.lineno + 1, first.lineno))


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
