"""What every importer shares: the interface, finding the published files in a folder or zip, and reading
delimited files row by row with errors that name the file and line."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from jdgraph.catalog.normalize import slugify
from jdgraph.catalog.records import ImportBundle
from jdgraph.errors import CatalogDataError

csv.field_size_limit(16 * 1024 * 1024)  # ESCO descriptions and alt-label lists exceed the 128 KiB default


class Importer(Protocol):
    """Turns a source's published files into an :class:`ImportBundle` for :class:`CatalogWriter`."""

    source: str
    """The ``source`` every imported row carries (``starter``, ``esco``, ``onet``)."""

    def bundle(self) -> ImportBundle:
        """Read the files (streaming where it can) and return the records; raises CatalogDataError."""
        ...


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path
    member: str | None = None  # inside a zip


class SourceFiles:
    """The published files of a taxonomy, found by name in a folder (searched recursively) or in zip archives
    (a zip given directly, or zips inside the folder)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise CatalogDataError(f"{self.path} does not exist")
        self.entries: dict[str, _Entry] = {}
        archives = [self.path] if self.path.is_file() else sorted(self.path.rglob("*.zip"))
        if self.path.is_dir():
            for f in sorted(self.path.rglob("*")):
                if f.is_file() and f.suffix.lower() != ".zip":
                    self.entries.setdefault(f.name.lower(), _Entry(f.name, f))
        for archive in archives:
            try:
                with zipfile.ZipFile(archive) as zf:
                    for member in zf.namelist():
                        if not member.endswith("/"):
                            name = member.rsplit("/", 1)[-1]
                            self.entries.setdefault(name.lower(), _Entry(name, archive, member))
            except zipfile.BadZipFile as exc:
                raise CatalogDataError(f"not a readable zip archive ({exc})", file=str(archive)) from exc

    def find(self, pattern: str) -> _Entry:
        """The file whose name matches ``pattern`` (a regular expression, case-insensitive, whole name)."""
        found = self.find_optional(pattern)
        if found is None:
            raise CatalogDataError(f"no file matching {pattern!r} in {self.path}")
        return found

    def find_optional(self, pattern: str) -> _Entry | None:
        rx = re.compile(pattern, re.I)
        hits = [e for key, e in sorted(self.entries.items()) if rx.fullmatch(key)]
        return hits[0] if hits else None

    def display(self, entry: _Entry) -> str:
        return f"{entry.path.name}:{entry.member}" if entry.member else str(entry.path)

    @contextmanager
    def open(self, entry: _Entry) -> Iterator[IO[str]]:
        try:
            if entry.member is None:
                with entry.path.open(encoding="utf-8-sig", newline="") as fh:
                    yield fh
            else:
                with zipfile.ZipFile(entry.path) as zf, zf.open(entry.member) as raw:
                    yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise CatalogDataError(f"cannot read ({exc})", file=self.display(entry)) from exc
        except UnicodeDecodeError as exc:
            raise CatalogDataError(f"not UTF-8 text ({exc.reason})", file=self.display(entry)) from exc

    def digest(self, entries: Sequence[_Entry], *, only: Sequence[str] = ()) -> str:
        """A hash of the content of the given files (and of the slice ``only`` selects), to recognise an import
        of the same release."""
        h = hashlib.sha256()
        h.update(",".join(sorted(only)).encode())
        for entry in entries:
            h.update(entry.name.encode())
            with self.open(entry) as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), ""):  # type: ignore[misc]
                    h.update(chunk.encode())
        return h.hexdigest()[:32]

    def rows(
        self, entry: _Entry, required: Sequence[str], *, delimiter: str = ",", nonempty: Sequence[str] = ()
    ) -> Iterator[tuple[int, dict[str, str]]]:
        """(line, row) for each record; a missing column, a short or long row, an empty required field or a
        file cut off inside a quoted field is a CatalogDataError naming the file and line."""
        where = self.display(entry)
        with self.open(entry) as fh:
            reader = csv.reader(
                fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
            )
            try:
                header = next(reader)
            except StopIteration:
                raise CatalogDataError("the file is empty", file=where, line=1) from None
            except (csv.Error, UnicodeDecodeError) as exc:
                raise CatalogDataError(f"unreadable header ({exc})", file=where, line=1) from exc
            missing = [c for c in required if c not in header]
            if missing:
                raise CatalogDataError(f"missing column(s) {missing}; found {header}", file=where, line=1)
            width = len(header)
            line = reader.line_num
            try:
                for values in reader:
                    start = line + 1
                    line = reader.line_num
                    if not values:
                        continue
                    if len(values) != width:
                        raise CatalogDataError(
                            f"expected {width} fields, found {len(values)} (a truncated or malformed row)",
                            file=where,
                            line=start,
                        )
                    row = dict(zip(header, values, strict=True))
                    for col in nonempty:
                        if not row[col].strip():
                            raise CatalogDataError(f"empty {col!r}", file=where, line=start)
                    yield start, row
            except csv.Error as exc:
                raise CatalogDataError(f"malformed CSV ({exc})", file=where, line=reader.line_num) from exc
            except UnicodeDecodeError as exc:
                raise CatalogDataError(f"not UTF-8 text ({exc.reason})", file=where, line=reader.line_num) from exc


def split_labels(value: str) -> list[str]:
    """ESCO packs alternative labels one per line in a single field."""
    return [x.strip() for x in value.split("\n") if x.strip()]


def unique_slugs(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """source_id → slug, unique: a label shared by several concepts gets a short suffix from its id, in id order,
    so the slugs are the same on every import of the same files."""
    seen: dict[str, int] = {}
    out: dict[str, str] = {}
    for source_id, label in sorted(pairs):
        base = slugify(label) or "x"
        n = seen.get(base, 0)
        seen[base] = n + 1
        out[source_id] = base if n == 0 else f"{base}-{hashlib.sha1(source_id.encode()).hexdigest()[:6]}"
    return out
