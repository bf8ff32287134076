"""Catalog reads: plain parameterised SQL over one catalog's schema, returning pydantic models.

:class:`Catalog` bundles a catalog's database and its (cached) embedder. It reads; it does not score: how role
signals are fused lives in :mod:`jdgraph.matching.roles`, used by the graph and the tools alike. Writes go through
:class:`jdgraph.catalog.writer.CatalogWriter` (imports) and :class:`jdgraph.catalog.runs.RunStore` (runs).
Which catalog a name means is :mod:`jdgraph.catalog.registry`'s business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
from pgvector import Vector

from jdgraph.catalog.db import SKILL_EF_SEARCH, TERM_EF_SEARCH, Database
from jdgraph.catalog.embeddings import CachedEmbeddings, CoalescingEmbeddings, ModelEmbeddings, as_array
from jdgraph.catalog.models import (
    CatalogStats,
    DimensionRef,
    Kra,
    KraMatch,
    MatchVia,
    RoleRef,
    SkillCandidate,
    SkillMatch,
    SkillRef,
)
from jdgraph.catalog.normalize import normalize_alias
from jdgraph.catalog.review import ReviewStore
from jdgraph.catalog.runs import RunStore
from jdgraph.errors import InputError, NotFoundError

T = TypeVar("T")
# Derived in-memory caches (the extractor's alias index, role skill sets) are rebuilt when this changes: a
# sequence every statement that changes catalog content advances (migration 0004), read in well under a ms.
_CATALOG_VERSION = "SELECT last_value::text || ':' || is_called::text AS version FROM catalog_changes"
MAX_QUERY_CHARS = 2000

SKILL_CENTROID_WEIGHT = 0.5
"""Share of the skill's centroid (vs its best alias) in sentence→skill search scores."""
SKILL_ATTENTION_WEIGHT = 0.5
"""Share of the token-attention score (vs the pooled score above) when sentence→skill search reranks its
candidates (:func:`token_attention`). With ``SKILL_ATTENTION_TEMPERATURE`` chosen on TRAINING data only
(``python -m jdgraph.evals.tune_skill_attention``: 356 SkillSpan training lines whose annotated span is an ESCO
alias; the best RP@5 with MiniLM, the default encoder: 44.5 → 51.9; the tuned encoder's catalog 51.0 → 57.4 here,
59.7 at its own best, weight 0.7 and temperature 0.1), never on the dev suites."""
SKILL_ATTENTION_TEMPERATURE = 0.05
"""Softmax temperature over a candidate skill's cosines with the sentence's word pieces: low, so the skill reads
the few words that name it and not the sentence's average."""
SKILL_RERANK_CANDIDATES = 50
"""Candidates the pooled search hands to the token-attention rerank."""

_SKILL_COLS = """s.id, s.slug, s.display_name, s.nature, s.category, s.sub_category, s.volatility,
                 s.typical_lifespan, s.status, s.source, s.source_id"""
_ROLE_COLS = """r.id, r.slug, r.display_name, r.domain, r.archetype, r.source, r.source_id,
                (SELECT p.slug FROM roles p WHERE p.id = r.parent_id) AS parent_slug"""


class TitleHit(NamedTuple):
    role_id: int
    title: str
    """The JD's title that found the alias."""
    alias: str
    similarity: float
    match_via: str


def token_attention(queries: np.ndarray, tokens: np.ndarray, temperature: float) -> np.ndarray:
    """Each query vector (a skill's alias, unit rows) attends over a text's word-piece vectors (unit rows): softmax
    of their cosines at ``temperature``, then the cosine of the query with the attention-weighted token mean."""
    sims = queries @ tokens.T
    weights = np.exp((sims - sims.max(axis=1, keepdims=True)) / temperature)
    weights /= weights.sum(axis=1, keepdims=True)
    context = weights @ tokens
    norms = np.linalg.norm(context, axis=1)
    return np.asarray((context * queries).sum(axis=1) / np.where(norms == 0, 1, norms), dtype=np.float32)


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b`` (as pgvector's ``1 - (x <=> y)``)."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.asarray(a @ b.T, dtype=np.float64)


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

    def __init__(self, db: Database, embeddings: ModelEmbeddings, *, name: str = "starter") -> None:
        self.name = name
        self.db = db
        self.runs = RunStore(db)
        if not isinstance(embeddings, CachedEmbeddings):
            embeddings = CachedEmbeddings(CoalescingEmbeddings(embeddings), db)
        self.embeddings = embeddings
        self.review = ReviewStore(db, embeddings)
        self._derived: dict[str, tuple[str, object]] = {}  # see cached()

    # -- skills ---------------------------------------------------------------------------------------------
    def lookup_skill(self, term: str, *, accept: float | None) -> SkillMatch:
        """Resolve a term: exact alias → normalised alias → nearest alias embedding (if >= ``accept``)."""
        return self.lookup_skills([term], accept=accept)[0]

    def lookup_skills(self, terms: Sequence[str], *, accept: float | None) -> list[SkillMatch]:
        """Batched :meth:`lookup_skill`: one lexical query for all terms, one embedding batch for the misses.

        ``accept=None`` means lexical only: misses come back unmatched without embedding anything."""
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
        if accept is None:
            for i in missing:
                results[i] = SkillMatch(term=cleaned[i], score=0.0)
        elif missing:
            vectors = self.embeddings.embed_array([cleaned[i] for i in missing])
            nearest = self.nearest_skills_batch(vectors, k=5, ef_search=TERM_EF_SEARCH)
            for i, candidates in zip(missing, nearest, strict=True):
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

    def nearest_skills_batch(
        self, vectors: np.ndarray, *, k: int, ef_search: int = SKILL_EF_SEARCH
    ) -> list[list[SkillCandidate]]:
        """For each vector, the top-k skills by their best alias embedding (several aliases of one skill count
        once). One round trip for the whole batch: each vector's neighbours come from a LATERAL index scan."""
        if len(vectors) == 0:
            return []
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(int(ef_search)),))
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
        """Ranked skills for free text: lexical alias hits first (score 1.0), then embedding neighbours scored on
        the skill's best alias and on its centroid (:meth:`nearest_skills_hybrid`), reranked by token attention
        where the encoder gives word-piece vectors (:meth:`rerank_by_attention`)."""
        text = clean_query(text)
        match = self.lookup_skill(text, accept=None)  # lexical here; the embedding neighbours come below
        lexical = match.candidates if match.match_via in ("exact", "normalized") else []
        seen = {c.skill.slug for c in lexical}
        vector = self.embeddings.embed_array([text])[0]
        tokens = self.embeddings.token_vectors(text)
        n = k + len(seen) if tokens is None else max(k, SKILL_RERANK_CANDIDATES) + len(seen)
        semantic = [c for c in self.nearest_skills_hybrid(vector, k=n) if c.skill.slug not in seen]
        if tokens is not None and semantic:
            semantic = self.rerank_by_attention(semantic, tokens)
        return (lexical + semantic)[:k]

    def rerank_by_attention(
        self,
        candidates: list[SkillCandidate],
        tokens: np.ndarray,
        *,
        weight: float = SKILL_ATTENTION_WEIGHT,
        temperature: float = SKILL_ATTENTION_TEMPERATURE,
    ) -> list[SkillCandidate]:
        """Rescore pooled-search candidates as (1 - w) · pooled score + w · the matched alias's token attention
        over the sentence (ConTeXT-match's scoring, untrained): a long sentence's pooled vector averages every
        skill it names, while attention lets each candidate find its own words in it."""
        alias_vectors = self.embeddings.embed_array([c.alias for c in candidates])  # cached: the catalog's aliases
        attention = token_attention(alias_vectors, tokens, temperature)
        w = weight
        scored = [
            c.model_copy(update={"score": round(float((1 - w) * c.score + w * a), 4)})
            for c, a in zip(candidates, attention, strict=True)
        ]
        scored.sort(key=lambda c: (-c.score, c.skill.slug))
        return scored

    def nearest_skills_hybrid(
        self, vector: np.ndarray, *, k: int, centroid_weight: float = SKILL_CENTROID_WEIGHT
    ) -> list[SkillCandidate]:
        """The top-k skills for a sentence-like vector, scored (1 - w) · best alias cosine + w · centroid cosine.

        Candidates are the nearest aliases' skills and the nearest skill centroids; both cosines are then exact
        for each candidate. On the sentence→skill dev suites (ESCO) this scores RP@5 56.5 / 45.5 (tech / house)
        against 52.5 / 43.9 for the best alias alone."""
        n = max(4 * k, 40)
        with self.db.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL hnsw.ef_search = {SKILL_EF_SEARCH}")
            rows = conn.execute(
                f"""WITH cand AS (
                        (SELECT skill_id FROM skill_aliases WHERE embedding IS NOT NULL
                         ORDER BY embedding <=> %(v)s LIMIT %(n)s)
                        UNION
                        (SELECT id FROM skills WHERE centroid IS NOT NULL ORDER BY centroid <=> %(v)s LIMIT %(n)s)),
                    best AS (
                        SELECT DISTINCT ON (a.skill_id) a.skill_id, a.id AS alias_id, a.alias,
                               1 - (a.embedding <=> %(v)s) AS alias_sim
                        FROM skill_aliases a WHERE a.skill_id IN (SELECT skill_id FROM cand)
                          AND a.embedding IS NOT NULL
                        ORDER BY a.skill_id, a.embedding <=> %(v)s)
                    SELECT best.alias_id, best.alias, best.alias_sim,
                           coalesce(1 - (s.centroid <=> %(v)s), best.alias_sim) AS centroid_sim, {_SKILL_COLS}
                    FROM best JOIN skills s ON s.id = best.skill_id WHERE s.status <> 'retired'""",
                {"v": Vector(vector), "n": n},
            ).fetchall()
        scored = [((1 - centroid_weight) * r["alias_sim"] + centroid_weight * r["centroid_sim"], r) for r in rows]
        scored.sort(key=lambda x: (-x[0], x[1]["slug"]))
        return [
            SkillCandidate(
                skill=_skill(r),
                score=round(float(score), 4),
                match_via="embedding",
                alias=r["alias"],
                alias_id=r["alias_id"],
            )
            for score, r in scored[:k]
        ]

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

    def role_dimension_slugs(self, role: str) -> set[str]:
        """The dimensions a role is linked to (any source)."""
        with self.db.connection() as conn:
            rows = conn.execute(
                """SELECT d.slug FROM role_dimensions rd JOIN dimensions d ON d.id = rd.dimension_id
                   JOIN roles r ON r.id = rd.role_id WHERE r.slug = %s""",
                (role,),
            ).fetchall()
        return {r["slug"] for r in rows}

    def role_kras(self, role: str) -> list[Kra]:
        ref = self.get_role(role)
        with self.db.connection() as conn:
            rows = conn.execute("SELECT id, text FROM role_kras WHERE role_id = %s ORDER BY id", (ref.id,)).fetchall()
        return [Kra(**r) for r in rows]

    def role_title_hits(self, titles: Sequence[str], *, k: int = 10) -> list[TitleHit]:
        """Title aliases close to each title: every alias whose normalised form equals the title (similarity 1.0),
        and the ``3k`` nearest alias embeddings of each title. Scoring them is :mod:`jdgraph.matching.roles`'s."""
        titles = [t for t in titles if t and t.strip()]
        if not titles:
            return []
        hits: list[TitleHit] = []
        norms = [normalize_alias(t) for t in titles]
        vectors = self.embeddings.embed_array(titles)
        with self.db.connection() as conn:
            for r in conn.execute(
                "SELECT role_id, alias, alias_norm FROM role_aliases WHERE alias_norm = ANY(%s)", (norms,)
            ).fetchall():
                hits.append(TitleHit(r["role_id"], titles[norms.index(r["alias_norm"])], r["alias"], 1.0, "normalized"))
            for title, vec in zip(titles, vectors, strict=True):
                rows = conn.execute(
                    """SELECT role_id, alias, 1 - (embedding <=> %b) AS sim FROM role_aliases
                       WHERE embedding IS NOT NULL ORDER BY embedding <=> %b LIMIT %s""",
                    (vec, vec, k * 3),
                ).fetchall()
                hits.extend(TitleHit(r["role_id"], title, r["alias"], float(r["sim"]), "embedding") for r in rows)
        return hits

    def nearest_title_examples(
        self, vector: np.ndarray, k: int, *, leave_out: Sequence[int] = ()
    ) -> list[tuple[int, float]]:
        """(role id, cosine) of the ``k`` coded vacancy titles nearest ``vector``, best first (none before
        ``jdgraph catalog import titles``). ``leave_out``: file lines not to use (a held-out fold when tuning)."""
        with self.db.connection() as conn:
            rows = conn.execute(
                """SELECT role_id, 1 - (embedding <=> %b) AS sim FROM role_title_examples
                   WHERE embedding IS NOT NULL AND NOT (source_line = ANY(%s))
                   ORDER BY embedding <=> %b LIMIT %s""",
                (vector, list(leave_out), vector, k),
            ).fetchall()
        return [(int(r["role_id"]), float(r["sim"])) for r in rows]

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
        # The candidates' KRA vectors are fetched (binary) and compared here: the same cross product in SQL, rounded
        # to numerics and sorted there, cost 27 ms a JD on ESCO (~250 KRAs × ~20 sentences), this 14.5 ms.
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, role_id, text, embedding FROM role_kras WHERE role_id = ANY(%s) AND embedding IS NOT NULL",
                (sorted(role_ids),),
                binary=True,
            ).fetchall()
        if not rows:
            return {}
        sims = np.round(_cosine_rows(np.vstack([as_array(r["embedding"]) for r in rows]), vectors), 4)
        best = sims.argmax(axis=1)  # each KRA's best sentence, the earliest among equal rounded similarities
        out: dict[int, list[KraMatch]] = {}
        for n, (r, i) in enumerate(zip(rows, best, strict=True)):
            out.setdefault(r["role_id"], []).append(
                KraMatch(kra_id=r["id"], kra=r["text"], sentence=sentences[i], similarity=float(sims[n, i]))
            )
        return {
            role_id: sorted(matches, key=lambda x: (-x.similarity, x.kra_id))[:top] for role_id, matches in out.items()
        }

    def nearest_roles_by_centroid(self, vector: np.ndarray, k: int) -> dict[int, float]:
        """The ``k`` roles whose centroid is nearest the vector (role id → cosine similarity)."""
        with self.db.connection() as conn, conn.transaction():
            # The planner prefers a sequential scan of a few thousand roles, but each row's centroid is read from
            # TOAST: 18 ms a query on ESCO's 3,007 occupations, against 1.9 ms through the HNSW index, whose top 20
            # held 99.97% of the exact top 20 for 200 training titles (the candidates are rescored exactly anyway).
            conn.execute("SET LOCAL enable_seqscan = off")
            rows = conn.execute(
                """SELECT id, 1 - (centroid <=> %b) AS sim FROM roles WHERE centroid IS NOT NULL
                   ORDER BY centroid <=> %b LIMIT %s""",
                (vector, vector, k),
            ).fetchall()
        return {r["id"]: float(r["sim"]) for r in rows}

    def centroid_similarities_for_roles(self, vector: np.ndarray, role_ids: set[int]) -> dict[int, float]:
        if not role_ids:
            return {}
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, 1 - (centroid <=> %b) AS sim FROM roles WHERE id = ANY(%s) AND centroid IS NOT NULL",
                (vector, sorted(role_ids)),
            ).fetchall()
        return {r["id"]: float(r["sim"]) for r in rows}

    def roles_by_id(self, ids: Sequence[int]) -> dict[int, RoleRef]:
        with self.db.connection() as conn:
            rows = conn.execute(f"SELECT {_ROLE_COLS} FROM roles r WHERE r.id = ANY(%s)", (list(ids),)).fetchall()
        return {r["id"]: _role(r) for r in rows}

    def cached(self, name: str, build: Callable[[], T]) -> T:
        """A value derived from catalog tables, kept per catalog and rebuilt when the catalog's content changes
        (an import, an approved review item, a learned link), so those show up without a restart."""
        with self.db.connection() as conn:
            row = conn.execute(_CATALOG_VERSION).fetchone()
        fingerprint = str(next(iter(row.values()))) if row else ""
        hit = self._derived.get(name)
        if hit is not None and hit[0] == fingerprint:
            return cast(T, hit[1])
        value = build()
        self._derived[name] = (fingerprint, value)
        return value

    def role_skill_sets(self) -> dict[int, dict[str, float]]:
        """Every role's skill set with weights: linked skills their link weight (essential 1.0; an optional ESCO
        skill 0.5), skills of essential dimensions 0.6, of optional dimensions 0.3 (the maximum where a skill
        comes by several paths). Cached: the sets are up to 10^5 rows that every run would otherwise re-read."""
        return self.cached("role_skill_sets", self._load_role_skill_sets)

    def _load_role_skill_sets(self) -> dict[int, dict[str, float]]:
        with self.db.connection() as conn:
            rows = conn.execute(
                """SELECT rs.role_id, s.slug, rs.weight AS w FROM role_skills rs JOIN skills s ON s.id = rs.skill_id
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

    def skill_alias_rows(self) -> list[dict[str, Any]]:
        """Every active skill's aliases with the skill's slug, name, nature and source, and the alias's type and
        source (for the extractor's index)."""
        with self.db.connection() as conn:
            return conn.execute(
                """SELECT a.alias, a.alias_norm, a.match_case, a.alias_type, a.source AS alias_source,
                          s.slug, s.display_name, s.nature, s.source
                   FROM skill_aliases a JOIN skills s ON s.id = a.skill_id WHERE s.status = 'active'"""
            ).fetchall()

    def role_title_texts(self) -> list[str]:
        with self.db.connection() as conn:
            return [r["alias"] for r in conn.execute("SELECT DISTINCT alias FROM role_aliases").fetchall()]

    def kra_vectors(self, role_slug: str) -> np.ndarray:
        """The KRA embeddings of a role (rows), empty when it has none."""
        with self.db.connection() as conn:
            rows = conn.execute(
                """SELECT k.embedding FROM role_kras k JOIN roles r ON r.id = k.role_id
                   WHERE r.slug = %s AND k.embedding IS NOT NULL""",
                (role_slug,),
            ).fetchall()
        if not rows:
            return np.zeros((0, self.embeddings.dimension), dtype=np.float32)
        return np.vstack([as_array(r["embedding"]) for r in rows])

    def is_empty(self) -> bool:
        with self.db.connection() as conn:
            row = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM roles) AND NOT EXISTS (SELECT 1 FROM skills) AS e")
            return bool(row.fetchone()["e"])  # type: ignore[index]

    def sources(self) -> dict[str, str]:
        """source → version of its latest import."""
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (source) source, version FROM catalog_imports ORDER BY source, id DESC"
            ).fetchall()
        return {r["source"]: r["version"] or "" for r in rows}

    # -- stats ----------------------------------------------------------------------------------------------
    def stats(self) -> CatalogStats:
        with self.db.connection() as conn:
            row = conn.execute(
                """SELECT (SELECT count(*) FROM skills) AS skills,
                          (SELECT count(*) FROM skill_aliases) AS skill_aliases,
                          (SELECT count(*) FROM dimensions) AS dimensions,
                          (SELECT count(*) FROM skill_dimensions) AS skill_dimension_links,
                          (SELECT count(*) FROM roles WHERE status <> 'retired') AS roles,
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
        return CatalogStats(catalog=self.name, schema=self.db.schema, sources=self.sources(), **row)

    def row_counts(self) -> dict[str, int]:
        """Row counts of every catalog and run table (``jdgraph db status``)."""
        tables = (
            "skills", "skill_aliases", "dimensions", "roles", "role_aliases", "role_kras", "role_skills",
            "review_queue", "runs", "llm_calls", "embedding_cache",
        )  # fmt: skip
        with self.db.connection() as conn:
            return {t: int(conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"]) for t in tables}  # type: ignore[index]
