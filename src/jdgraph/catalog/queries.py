"""Catalog queries: plain parameterised SQL over the catalog schema, returning pydantic models.

:class:`Catalog` bundles the database and the (cached) embedder; the LangChain tools, the CLI and the graph
nodes all go through it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
from pgvector import Vector

from jdgraph.catalog.db import Database, get_database
from jdgraph.catalog.models import (
    CatalogStats,
    DimensionRef,
    Kra,
    KraMatch,
    MatchVia,
    RoleCandidate,
    RoleEvidence,
    RoleRef,
    RoleSkillOverlap,
    SkillCandidate,
    SkillMatch,
    SkillRef,
)
from jdgraph.catalog.normalize import normalize_alias
from jdgraph.embeddings import CachedEmbeddings, CoalescingEmbeddings, ModelEmbeddings, make_embeddings
from jdgraph.errors import InputError, NotFoundError

DEFAULT_EMBEDDING_ACCEPT = 0.80
T = TypeVar("T")
# Changes whenever a role↔skill, role↔dimension or skill↔dimension link is added, removed or re-weighted.
_LINKS_FINGERPRINT = """
    SELECT (SELECT count(*) || ':' || coalesce(sum(role_id::bigint * 1000003 + skill_id), 0) FROM role_skills)
        || '/' || (SELECT count(*) || ':' || coalesce(sum(role_id::bigint * 1000003 + dimension_id
                   + CASE importance WHEN 'essential' THEN 1 ELSE 0 END), 0) FROM role_dimensions)
        || '/' || (SELECT count(*) || ':' || coalesce(sum(skill_id::bigint * 1000003 + dimension_id), 0)
                   FROM skill_dimensions) AS fingerprint"""
MAX_QUERY_CHARS = 2000

_SKILL_COLS = """s.id, s.slug, s.display_name, s.nature, s.category, s.sub_category, s.volatility,
                 s.typical_lifespan, s.status, s.source, s.source_id"""
_ROLE_COLS = """r.id, r.slug, r.display_name, r.domain, r.archetype, r.source, r.source_id,
                (SELECT p.slug FROM roles p WHERE p.id = r.parent_id) AS parent_slug"""


def _skill(row: dict[str, Any]) -> SkillRef:
    return SkillRef(**{k: row[k] for k in SkillRef.model_fields if k in row})


def _role(row: dict[str, Any]) -> RoleRef:
    return RoleRef(**{k: row[k] for k in RoleRef.model_fields if k in row})


def clean_query(text: str, *, what: str = "query") -> str:
    """Reject empty, whitespace-only, binary or oversized queries with a clear message."""
    if text is None or not str(text).strip():
        raise InputError(f"the {what} is empty", field=what)
    text = str(text).strip()
    if "\x00" in text:
        raise InputError(f"the {what} contains binary data (NUL bytes)", field=what)
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"the {what} is {len(text)} characters; the limit is {MAX_QUERY_CHARS}", field=what)
    return text


class Catalog:
    """Read access to the catalog (skills, roles, KRAs, dimensions) with embedding search."""

    def __init__(self, db: Database, embeddings: ModelEmbeddings) -> None:
        self.db = db
        if not isinstance(embeddings, CachedEmbeddings):
            embeddings = CachedEmbeddings(CoalescingEmbeddings(embeddings), db)
        self.embeddings = embeddings
        self._derived: dict[str, tuple[str, object]] = {}  # see cached()

    # -- skills ---------------------------------------------------------------------------------------------
    def lookup_skill(self, term: str, *, accept: float = DEFAULT_EMBEDDING_ACCEPT) -> SkillMatch:
        """Resolve a term: exact alias → normalised alias → nearest alias embedding (if >= ``accept``)."""
        return self.lookup_skills([term], accept=accept)[0]

    def lookup_skills(self, terms: Sequence[str], *, accept: float = DEFAULT_EMBEDDING_ACCEPT) -> list[SkillMatch]:
        """Batched :meth:`lookup_skill`: one lexical query for all terms, one embedding batch for the misses.

        ``accept`` above 1 means lexical only: misses come back unmatched without embedding anything."""
        cleaned = [clean_query(t, what="skill term") for t in terms]
        norms = [normalize_alias(t) for t in cleaned]
        results: list[SkillMatch | None] = [None] * len(cleaned)
        with self.db.connection() as conn:
            rows = conn.execute(
                f"""SELECT a.id AS alias_id, a.alias, a.alias_norm, {_SKILL_COLS}
                    FROM skill_aliases a JOIN skills s ON s.id = a.skill_id
                    WHERE (a.alias = ANY(%s) OR a.alias_norm = ANY(%s)) AND s.status <> 'retired'
                    ORDER BY a.is_primary DESC, a.id""",
                (cleaned, norms),
            ).fetchall()
        for i, (term, norm) in enumerate(zip(cleaned, norms, strict=True)):
            exact = [r for r in rows if r["alias"] == term]
            normalized = [r for r in rows if r["alias_norm"] == norm] if norm else []
            hits = exact or normalized
            via: MatchVia = "exact" if exact else "normalized"
            if not hits:
                continue
            skills = {r["slug"]: r for r in hits}
            best = hits[0]
            candidates = [
                SkillCandidate(skill=_skill(r), score=1.0, match_via=via, alias=r["alias"], alias_id=r["alias_id"])
                for r in skills.values()
            ]
            results[i] = SkillMatch(
                term=term,
                skill=_skill(best),
                match_via=via,
                score=1.0,
                alias_id=best["alias_id"],
                alias=best["alias"],
                ambiguous=len(skills) > 1,
                candidates=candidates,
            )
        missing = [i for i, r in enumerate(results) if r is None]
        if accept > 1.0:
            for i in missing:
                results[i] = SkillMatch(term=cleaned[i], score=0.0)
        elif missing:
            vectors = self.embeddings.embed_array([cleaned[i] for i in missing])
            for i, candidates in zip(missing, self.nearest_skills_batch(vectors, k=5), strict=True):
                top = candidates[0] if candidates else None
                if top is not None and top.score >= accept:
                    results[i] = SkillMatch(
                        term=cleaned[i],
                        skill=top.skill,
                        match_via="embedding",
                        score=top.score,
                        alias_id=top.alias_id,
                        alias=top.alias,
                        candidates=candidates,
                    )
                else:
                    results[i] = SkillMatch(term=cleaned[i], score=top.score if top else 0.0, candidates=candidates)
        return [r for r in results if r is not None]

    def _nearest_skills(self, vector: np.ndarray, *, k: int) -> list[SkillCandidate]:
        return self.nearest_skills_batch(vector[None, :], k=k)[0]

    def nearest_skills_batch(self, vectors: np.ndarray, *, k: int, ef_search: int = 80) -> list[list[SkillCandidate]]:
        """For each vector, the top-k skills by their best alias embedding (several aliases of one skill count
        once). One round trip for the whole batch: each vector's neighbours come from a LATERAL index scan."""
        if len(vectors) == 0:
            return []
        with self.db.connection() as conn:
            conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
            rows = conn.execute(
                f"""SELECT q.i, n.alias_id, n.alias, n.score, {_SKILL_COLS}
                    FROM unnest(%b::vector[]) WITH ORDINALITY AS q(v, i)
                    CROSS JOIN LATERAL (
                        SELECT DISTINCT ON (near.skill_id) near.alias_id, near.alias, near.skill_id, near.score
                        FROM (SELECT a.id AS alias_id, a.alias, a.skill_id, 1 - (a.embedding <=> q.v) AS score
                              FROM skill_aliases a WHERE a.embedding IS NOT NULL
                              ORDER BY a.embedding <=> q.v LIMIT %s) near
                        ORDER BY near.skill_id, near.score DESC) n
                    JOIN skills s ON s.id = n.skill_id WHERE s.status <> 'retired'""",
                ([Vector(v) for v in vectors], k * 4),
            ).fetchall()
        per_vector: list[list[dict[str, Any]]] = [[] for _ in range(len(vectors))]
        for r in rows:
            per_vector[r["i"] - 1].append(r)
        out: list[list[SkillCandidate]] = []
        for group in per_vector:
            group.sort(key=lambda r: (-r["score"], r["slug"]))
            out.append(
                [
                    SkillCandidate(
                        skill=_skill(r),
                        score=round(float(r["score"]), 4),
                        match_via="embedding",
                        alias=r["alias"],
                        alias_id=r["alias_id"],
                    )
                    for r in group[:k]
                ]
            )
        return out

    def search_skills(self, text: str, k: int = 10) -> list[SkillCandidate]:
        """Ranked skills for free text: lexical alias hits first (score 1.0), then embedding neighbours."""
        text = clean_query(text)
        match = self.lookup_skill(text, accept=2.0)  # accept > 1: lexical only, embedding via _nearest_skills
        lexical = match.candidates if match.match_via in ("exact", "normalized") else []
        seen = {c.skill.slug for c in lexical}
        vector = self.embeddings.embed_array([text])[0]
        semantic = [c for c in self._nearest_skills(vector, k=k + len(seen)) if c.skill.slug not in seen]
        return (lexical + semantic)[:k]

    def get_skill(self, slug: str) -> SkillRef:
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT {_SKILL_COLS} FROM skills s WHERE s.slug = %s", (slug,)).fetchone()
        if row is None:
            raise NotFoundError(f"no skill with slug {slug!r}", kind="skill", key=slug)
        return _skill(row)

    def skill_dimensions(self, skill: str) -> list[DimensionRef]:
        """The dimensions a skill is linked to in the catalog (never inferred)."""
        ref = self.get_skill(skill)
        with self.db.connection() as conn:
            rows = conn.execute(
                """SELECT d.id, d.slug, d.name, d.rationale FROM skill_dimensions sd
                   JOIN dimensions d ON d.id = sd.dimension_id WHERE sd.skill_id = %s ORDER BY d.slug""",
                (ref.id,),
            ).fetchall()
        return [DimensionRef(**r) for r in rows]

    def dimensions_for_skills(self, skill_ids: Sequence[int]) -> dict[int, list[DimensionRef]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                """SELECT sd.skill_id, d.id, d.slug, d.name, d.rationale FROM skill_dimensions sd
                   JOIN dimensions d ON d.id = sd.dimension_id WHERE sd.skill_id = ANY(%s)
                   ORDER BY d.slug""",
                (list(skill_ids),),
            ).fetchall()
        out: dict[int, list[DimensionRef]] = {}
        for r in rows:
            out.setdefault(r["skill_id"], []).append(
                DimensionRef(id=r["id"], slug=r["slug"], name=r["name"], rationale=r["rationale"])
            )
        return out

    # -- roles ----------------------------------------------------------------------------------------------
    def get_role(self, slug: str) -> RoleRef:
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT {_ROLE_COLS} FROM roles r WHERE r.slug = %s", (slug,)).fetchone()
        if row is None:
            raise NotFoundError(f"no role with slug {slug!r}", kind="role", key=slug)
        return _role(row)

    def role_kras(self, role: str) -> list[Kra]:
        ref = self.get_role(role)
        with self.db.connection() as conn:
            rows = conn.execute("SELECT id, text FROM role_kras WHERE role_id = %s ORDER BY id", (ref.id,)).fetchall()
        return [Kra(**r) for r in rows]

    def role_title_matches(self, titles: Sequence[str], *, k: int = 10) -> dict[int, tuple[str, float, str]]:
        """Best title-alias match per role over several titles: role id → (alias, similarity, match_via)."""
        titles = [t for t in titles if t and t.strip()]
        if not titles:
            return {}
        best: dict[int, tuple[str, float, str]] = {}
        norms = [normalize_alias(t) for t in titles]
        with self.db.connection() as conn:
            for r in conn.execute(
                "SELECT role_id, alias FROM role_aliases WHERE alias_norm = ANY(%s)", (norms,)
            ).fetchall():
                best[r["role_id"]] = (r["alias"], 1.0, "normalized")
        vectors = self.embeddings.embed_array(titles)
        with self.db.connection() as conn:
            conn.execute("SET LOCAL hnsw.ef_search = 100")
            for vec in vectors:
                rows = conn.execute(
                    """SELECT role_id, alias, 1 - (embedding <=> %b) AS sim FROM role_aliases
                       WHERE embedding IS NOT NULL ORDER BY embedding <=> %b LIMIT %s""",
                    (vec, vec, k * 3),
                ).fetchall()
                for r in rows:
                    sim = float(r["sim"])
                    if r["role_id"] not in best or best[r["role_id"]][1] < sim:
                        best[r["role_id"]] = (r["alias"], sim, "embedding")
        return best

    def kra_matches(
        self, sentences: Sequence[str], vectors: np.ndarray | None = None, *, per_sentence: int = 8
    ) -> dict[int, list[KraMatch]]:
        """For each role, its KRA↔sentence pairs (best first) among each sentence's nearest KRAs."""
        if not sentences:
            return {}
        if vectors is None:
            vectors = self.embeddings.embed_array(list(sentences))
        out: dict[int, list[KraMatch]] = {}
        with self.db.connection() as conn:
            conn.execute("SET LOCAL hnsw.ef_search = 100")
            rows = conn.execute(
                """SELECT q.i, k.id, k.role_id, k.text, k.sim
                   FROM unnest(%b::vector[]) WITH ORDINALITY AS q(v, i)
                   CROSS JOIN LATERAL (
                       SELECT id, role_id, text, 1 - (embedding <=> q.v) AS sim FROM role_kras
                       WHERE embedding IS NOT NULL ORDER BY embedding <=> q.v LIMIT %s) k
                   ORDER BY q.i, k.sim DESC""",
                ([Vector(v) for v in vectors], per_sentence),
            ).fetchall()
        for r in rows:
            out.setdefault(r["role_id"], []).append(
                KraMatch(
                    kra_id=r["id"], kra=r["text"], sentence=sentences[r["i"] - 1], similarity=round(float(r["sim"]), 4)
                )
            )
        for role_id, matches in out.items():
            # One pair per KRA (its best sentence), best first.
            by_kra: dict[int, KraMatch] = {}
            for m in matches:
                if m.kra_id not in by_kra or by_kra[m.kra_id].similarity < m.similarity:
                    by_kra[m.kra_id] = m
            out[role_id] = sorted(by_kra.values(), key=lambda m: (-m.similarity, m.kra_id))
        return out

    def kra_matches_for_roles(
        self, sentences: Sequence[str], vectors: np.ndarray, role_ids: set[int], *, top: int = 3
    ) -> dict[int, list[KraMatch]]:
        """Exact best KRA↔sentence pairs for the given roles (no index: the candidate set is small)."""
        if not role_ids or not sentences:
            return {}
        out: dict[int, dict[int, KraMatch]] = {}
        with self.db.connection() as conn:
            # Each KRA once, with its best sentence (the earliest among equal rounded similarities).
            rows = conn.execute(
                """SELECT DISTINCT ON (k.id) k.id, k.role_id, k.text, q.i,
                          round((1 - (k.embedding <=> q.v))::numeric, 4) AS sim
                   FROM unnest(%b::vector[]) WITH ORDINALITY AS q(v, i)
                   CROSS JOIN role_kras k
                   WHERE k.role_id = ANY(%s) AND k.embedding IS NOT NULL
                   ORDER BY k.id, sim DESC, q.i""",
                ([Vector(v) for v in vectors], sorted(role_ids)),
            ).fetchall()
        for r in rows:
            out.setdefault(r["role_id"], {})[r["id"]] = KraMatch(
                kra_id=r["id"], kra=r["text"], sentence=sentences[r["i"] - 1], similarity=float(r["sim"])
            )
        return {
            role_id: sorted(m.values(), key=lambda x: (-x.similarity, x.kra_id))[:top] for role_id, m in out.items()
        }

    def centroid_similarities_for_roles(self, vector: np.ndarray, role_ids: set[int]) -> dict[int, float]:
        if not role_ids:
            return {}
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, 1 - (centroid <=> %b) AS sim FROM roles WHERE id = ANY(%s) AND centroid IS NOT NULL",
                (vector, sorted(role_ids)),
            ).fetchall()
        return {r["id"]: float(r["sim"]) for r in rows}

    def centroid_similarities(self, vector: np.ndarray, *, k: int = 20) -> dict[int, float]:
        with self.db.connection() as conn:
            rows = conn.execute(
                """SELECT id, 1 - (centroid <=> %b) AS sim FROM roles WHERE centroid IS NOT NULL
                   AND status = 'active' ORDER BY centroid <=> %b LIMIT %s""",
                (vector, vector, k),
            ).fetchall()
        return {r["id"]: float(r["sim"]) for r in rows}

    def roles_by_id(self, ids: Sequence[int]) -> dict[int, RoleRef]:
        with self.db.connection() as conn:
            rows = conn.execute(f"SELECT {_ROLE_COLS} FROM roles r WHERE r.id = ANY(%s)", (list(ids),)).fetchall()
        return {r["id"]: _role(r) for r in rows}

    def search_roles(self, title_or_text: str, k: int = 5) -> list[RoleCandidate]:
        """Roles for a title or a longer text, scored from title aliases, KRAs and the role centroid.

        score = 0.6 · title-alias similarity + 0.25 · best KRA similarity + 0.15 · centroid similarity;
        ties break on slug so the order is deterministic.
        """
        text = clean_query(title_or_text)
        vector = self.embeddings.embed_array([text])[0]
        titles = self.role_title_matches([text])
        kras = self.kra_matches([text], vector[None, :], per_sentence=15)
        centroids = self.centroid_similarities(vector, k=30)
        role_ids = set(titles) | set(kras) | set(centroids)
        # A candidate found by one signal is scored on all three (exactly, not only within each top-k).
        kras = self.kra_matches_for_roles([text], vector[None, :], role_ids) | kras
        centroids = self.centroid_similarities_for_roles(vector, role_ids) | centroids
        roles = self.roles_by_id(sorted(role_ids))
        scored: list[RoleCandidate] = []
        for role_id in role_ids:
            alias, alias_sim, via = titles.get(role_id, (None, 0.0, "none"))
            kra_list = kras.get(role_id, [])[:3]
            kra_sim = kra_list[0].similarity if kra_list else 0.0
            cen = centroids.get(role_id, 0.0)
            score = 0.6 * alias_sim + 0.25 * kra_sim + 0.15 * cen
            scored.append(
                RoleCandidate(
                    role=roles[role_id],
                    score=round(score, 4),
                    evidence=RoleEvidence(
                        alias=alias,
                        alias_similarity=round(alias_sim, 4),
                        alias_match_via=via,
                        kra_matches=kra_list,
                        kra_similarity=kra_sim,
                        centroid_similarity=round(cen, 4),
                    ),
                )
            )
        scored.sort(key=lambda c: (-c.score, c.role.slug))
        return scored[:k]

    def cached(self, name: str, fingerprint_sql: str, build: Callable[[], T]) -> T:
        """A value derived from catalog tables, kept per catalog and rebuilt when ``fingerprint_sql`` (one cheap
        query returning one value) changes, so imports and approved review items show up without a restart."""
        with self.db.connection() as conn:
            row = conn.execute(fingerprint_sql).fetchone()
        fingerprint = str(next(iter(row.values()))) if row else ""
        hit = self._derived.get(name)
        if hit is not None and hit[0] == fingerprint:
            return cast(T, hit[1])
        value = build()
        self._derived[name] = (fingerprint, value)
        return value

    def role_skill_sets(self) -> dict[int, dict[str, float]]:
        """Every role's skill set with weights: signature skills 1.0, skills of essential dimensions 0.6,
        of optional dimensions 0.3 (the maximum where a skill comes by several paths). Cached: the sets are
        thousands of rows that every classification would otherwise re-read."""
        return self.cached("role_skill_sets", _LINKS_FINGERPRINT, self._load_role_skill_sets)

    def _load_role_skill_sets(self) -> dict[int, dict[str, float]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                """SELECT rs.role_id, s.slug, 1.0 AS w FROM role_skills rs JOIN skills s ON s.id = rs.skill_id
                   UNION ALL
                   SELECT rd.role_id, s.slug, CASE rd.importance WHEN 'essential' THEN 0.6 ELSE 0.3 END
                   FROM role_dimensions rd JOIN skill_dimensions sd ON sd.dimension_id = rd.dimension_id
                   JOIN skills s ON s.id = sd.skill_id"""
            ).fetchall()
        out: dict[int, dict[str, float]] = {}
        for r in rows:
            weights = out.setdefault(r["role_id"], {})
            weights[r["slug"]] = max(weights.get(r["slug"], 0.0), float(r["w"]))
        return out

    def roles_for_skills(self, skills: Sequence[str], k: int = 5) -> list[RoleSkillOverlap]:
        """Roles ranked by weighted overlap with the given skill slugs (matched weight / given count)."""
        wanted = list(dict.fromkeys(s for s in skills if s))
        if not wanted:
            raise InputError("no skills given", field="skills")
        sets = self.role_skill_sets()
        roles = self.roles_by_id(sorted(sets))
        ranked: list[RoleSkillOverlap] = []
        for role_id, weights in sets.items():
            matched = [s for s in wanted if s in weights]
            if not matched:
                continue
            score = sum(weights[s] for s in matched) / len(wanted)
            ranked.append(
                RoleSkillOverlap(role=roles[role_id], matched=matched, total=len(wanted), score=round(score, 4))
            )
        ranked.sort(key=lambda o: (-o.score, -len(o.matched), o.role.slug))
        return ranked[:k]

    def role_dimensions(self, role_id: int) -> dict[int, str]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT dimension_id, importance FROM role_dimensions WHERE role_id = %s", (role_id,)
            ).fetchall()
        return {r["dimension_id"]: r["importance"] for r in rows}

    # -- stats ----------------------------------------------------------------------------------------------
    def stats(self) -> CatalogStats:
        with self.db.connection() as conn:
            row = conn.execute(
                """SELECT (SELECT count(*) FROM skills) AS skills,
                          (SELECT count(*) FROM skill_aliases) AS skill_aliases,
                          (SELECT count(*) FROM dimensions) AS dimensions,
                          (SELECT count(*) FROM skill_dimensions) AS skill_dimension_links,
                          (SELECT count(*) FROM roles) AS roles,
                          (SELECT count(*) FROM role_aliases) AS role_aliases,
                          (SELECT count(*) FROM role_kras) AS kras,
                          (SELECT count(*) FROM role_dimensions) AS role_dimension_links,
                          (SELECT count(*) FROM role_skills) AS role_skill_links,
                          (SELECT count(*) FROM review_queue WHERE status = 'pending') AS pending_reviews,
                          (SELECT count(*) FROM runs) AS runs,
                          (SELECT value FROM catalog_meta WHERE key = 'embedding_model') AS embedding_model,
                          (SELECT value::int FROM catalog_meta WHERE key = 'embedding_dim') AS embedding_dim"""
            ).fetchone()
        assert row is not None
        return CatalogStats(**row)


_catalog: Catalog | None = None
_catalog_lock = threading.Lock()


def open_catalog(db: Database | None = None, embeddings: ModelEmbeddings | None = None) -> Catalog:
    """Migrate, load the starter catalog if the catalog is empty, and return a ready :class:`Catalog`."""
    from jdgraph.catalog.migrations import migrate
    from jdgraph.catalog.starter import load_starter_catalog, load_starter_definition

    db = db or get_database()
    inner = embeddings or make_embeddings()
    migrate(db, embedding_model=inner.model_id, embedding_dim=inner.dimension)
    catalog = Catalog(db, inner)
    with db.connection() as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM skills) AS n,
                      (SELECT value FROM catalog_meta WHERE key = 'starter_hash') AS starter_hash"""
        ).fetchone()
    assert row is not None
    # An empty catalog gets the starter catalog; a catalog built from an older starter file is brought up to date.
    if row["n"] == 0 or (row["starter_hash"] and row["starter_hash"] != load_starter_definition().content_hash):
        load_starter_catalog(db, catalog.embeddings)
    return catalog


def get_catalog() -> Catalog:
    """The process-wide catalog on the default database and embedder."""
    global _catalog
    with _catalog_lock:
        if _catalog is None:
            _catalog = open_catalog()
        return _catalog


def set_catalog(catalog: Catalog | None) -> None:
    global _catalog
    with _catalog_lock:
        _catalog = catalog
