"""Golden datasets: versioned JSONL, one case per line, validated by a pydantic schema.

``evals/goldens/<suite>.v<N>.jsonl``. A case carries the JD and what a correct run produces: the role (plus
acceptable alternates), canonical skills with a primary flag, key parse fields, the expected route and the names
that should be proposed as new skills. A parse field that is absent is not scored; present and null means
"must be absent". A bad line is a :class:`GoldenError` naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jdgraph.errors import GoldenError

Route = Literal["direct", "adjudicated", "new-role", "rejected"]
WorkMode = Literal["remote", "hybrid", "onsite"]
SUITE_DIR = Path("evals") / "goldens"


class ExpectedSkill(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(min_length=1)
    primary: bool = True


class ExpectedParse(BaseModel):
    """Only the fields present in the golden are scored (``model_fields_set``)."""

    model_config = ConfigDict(extra="forbid")
    experience_min: float | None = None
    experience_max: float | None = None
    countries: list[str] | None = Field(None, description="ISO 3166-1 alpha-2 codes, any order")
    work_mode: WorkMode | None = None


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str | None = Field(description="Catalog role slug; null when the route is new-role or rejected")
    role_alternates: list[str] = Field(default_factory=list)
    skills: list[ExpectedSkill] = Field(default_factory=list)
    route: Route = "direct"
    parse: ExpectedParse = Field(default_factory=ExpectedParse)
    new_skills: list[str] = Field(default_factory=list, description="Names that should be proposed as new skills")

    @model_validator(mode="after")
    def _role_matches_route(self) -> Expected:
        if (self.role is None) != (self.route in ("new-role", "rejected")):
            raise ValueError("role must be null exactly when the route is 'new-role' or 'rejected'")
        slugs = [s.slug for s in self.skills]
        if len(slugs) != len(set(slugs)):
            raise ValueError(f"duplicate skill slugs: {sorted({s for s in slugs if slugs.count(s) > 1})}")
        return self


class GoldenCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Stable id: results and baselines key on it")
    text: str = Field(min_length=1)
    title: str | None = None
    company: str | None = None
    expected: Expected
    tags: list[str] = Field(default_factory=list)


class Suite(BaseModel):
    name: str
    path: str
    sha256: str
    cases: list[GoldenCase]


def load_suite(path: Path | str) -> Suite:
    """Read and validate a golden file (every line, every id unique); the first problem is a GoldenError."""
    suite, problems = check_suite(path)
    if problems:
        raise GoldenError(problems[0])
    assert suite is not None
    return suite


def check_suite(path: Path | str) -> tuple[Suite | None, list[str]]:
    """Validate every line of a golden file and return the suite (None when any line is bad) with every problem,
    each naming the file and line, so one pass over a file shows all that needs fixing."""
    path = Path(path)
    if not path.is_file():
        return None, [f"golden file {path} does not exist"]
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [f"{path}: not UTF-8 (byte {exc.start})"]
    cases: list[GoldenCase] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = GoldenCase.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{n}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'case'}: {e['msg']}" for e in exc.errors())
            problems.append(f"{path}:{n}: {detail}")
            continue
        if case.id in seen:
            problems.append(f"{path}:{n}: duplicate id {case.id!r} (first on line {seen[case.id]})")
            continue
        seen[case.id] = n
        cases.append(case)
    if not cases and not problems:
        problems.append(f"{path}: no cases")
    if problems:
        return None, problems
    name = re.sub(r"\.v\d+$", "", path.name.removesuffix(".jsonl"))
    return Suite(name=name, path=str(path), sha256=hashlib.sha256(raw).hexdigest(), cases=cases), []


def resolve_suite(name_or_path: str, root: Path | None = None) -> Path:
    """``starter`` → the highest version of ``evals/goldens/starter.v<N>.jsonl``; a path is returned as is."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".jsonl" or candidate.exists():
        return candidate
    folder = (root or Path.cwd()) / SUITE_DIR
    versions = sorted(
        folder.glob(f"{name_or_path}.v*.jsonl"), key=lambda p: int(re.findall(r"\.v(\d+)\.jsonl$", p.name)[0])
    )
    if not versions:
        raise GoldenError(f"no suite {name_or_path!r}: expected {folder}/{name_or_path}.v<N>.jsonl or a path")
    return versions[-1]
