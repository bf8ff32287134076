"""ESCO (European Skills, Competences, Qualifications and Occupations) from its official CSV release.

Mapping: occupations → roles (preferred label; alt and hidden labels → title aliases; description, its sentences
also as KRAs of kind ``description``; ISCO group → domain and a dimension; ``source_id`` = concept URI; the ESCO
code kept in ``code``; broader occupation → parent). Skills → skills (skill type and reuse level → nature and
attributes; alt and hidden labels → aliases; description; ``source_id`` = concept URI). Skill groups → dimensions
(with their hierarchy); a skill's groups, or its broader skill's, → skill↔dimension links; broader skills →
skill relations. Occupation–skill relations → role↔skill links, essential (weight 1.0) or optional (0.5).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from jdgraph.catalog.importers.base import SourceFiles, split_labels, unique_slugs
from jdgraph.catalog.records import (
    NATURE_PROFILE,
    AliasRecord,
    DimensionRecord,
    ImportBundle,
    RoleDimensionLink,
    RoleRecord,
    RoleSkillLink,
    SkillRecord,
    SkillRelation,
)
from jdgraph.errors import CatalogDataError

_SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])")
MAX_DESCRIPTION_KRAS = 6
OPTIONAL_SKILL_WEIGHT = 0.5


def description_sentences(text: str, limit: int = MAX_DESCRIPTION_KRAS) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if len(s.split()) >= 4][:limit]


@dataclass
class EscoImporter:
    """``only``: ISCO code prefixes (``["2512"]``) to import a slice: those occupations and the skills they link."""

    path: Path
    only: Sequence[str] = ()
    source: str = "esco"

    def bundle(self) -> ImportBundle:
        files = SourceFiles(self.path)
        f_occ = files.find(r"occupations_en\.csv")
        f_skill = files.find(r"skills_en\.csv")
        f_groups = files.find(r"skillgroups_en\.csv")
        f_isco = files.find(r"iscogroups_en\.csv")
        f_broader_skill = files.find(r"broaderrelationsskillpillar(_en)?\.csv")
        f_broader_occ = files.find(r"broaderrelationsoccpillar(_en)?\.csv")
        f_rel = files.find(r"occupationskillrelations(_en)?\.csv")
        used = [f_occ, f_skill, f_groups, f_isco, f_broader_skill, f_broader_occ, f_rel]
        match = re.search(r"v\d+(\.\d+)+", " ".join(str(e.path.name) for e in used))
        version = f"ESCO {match.group(0)}" if match else "ESCO"
        content_hash = files.digest(used, only=self.only)

        isco = {
            row["code"]: row
            for _, row in files.rows(f_isco, ["conceptUri", "code", "preferredLabel"], nonempty=["conceptUri", "code"])
        }
        occupations = [
            row
            for _, row in files.rows(
                f_occ,
                ["conceptUri", "iscoGroup", "preferredLabel", "altLabels", "hiddenLabels", "description", "code"],
                nonempty=["conceptUri", "preferredLabel"],
            )
            if not self.only or row["iscoGroup"].startswith(tuple(self.only))
        ]
        occ_uris = {r["conceptUri"] for r in occupations}
        known_occupations = occ_uris if not self.only else None
        dangling: dict[str, int] = {}
        links: list[RoleSkillLink] = []
        for line, row in files.rows(
            f_rel, ["occupationUri", "relationType", "skillUri"], nonempty=["occupationUri", "skillUri"]
        ):
            if row["occupationUri"] not in occ_uris:
                if known_occupations is not None:  # the full release names an occupation it does not define
                    dangling[row["occupationUri"]] = dangling.get(row["occupationUri"], 0) + 1
                continue
            kind = row["relationType"]
            if kind not in ("essential", "optional"):
                raise CatalogDataError(f"unknown relationType {kind!r}", file=files.display(f_rel), line=line)
            weight = 1.0 if kind == "essential" else OPTIONAL_SKILL_WEIGHT
            links.append(RoleSkillLink(row["occupationUri"], row["skillUri"], kind, weight))  # type: ignore[arg-type]
        linked_skills = {x.skill for x in links}
        skills = [
            row
            for _, row in files.rows(
                f_skill,
                ["conceptUri", "skillType", "reuseLevel", "preferredLabel", "altLabels", "hiddenLabels", "description"],
                nonempty=["conceptUri", "preferredLabel"],
            )
            if not self.only or row["conceptUri"] in linked_skills
        ]
        skill_uris = {r["conceptUri"] for r in skills}
        groups = list(files.rows(f_groups, ["conceptUri", "preferredLabel"], nonempty=["conceptUri"]))

        skill_groups: dict[str, list[str]] = {}
        skill_broader: dict[str, str] = {}
        group_parent: dict[str, str] = {}
        for _, row in files.rows(f_broader_skill, ["conceptType", "conceptUri", "broaderType", "broaderUri"]):
            if row["broaderType"] == "SkillGroup":
                if row["conceptType"] == "SkillGroup":
                    group_parent.setdefault(row["conceptUri"], row["broaderUri"])
                else:
                    skill_groups.setdefault(row["conceptUri"], []).append(row["broaderUri"])
            elif row["conceptType"] != "SkillGroup":
                skill_broader.setdefault(row["conceptUri"], row["broaderUri"])
        occ_parent: dict[str, str] = {}
        isco_parent: dict[str, str] = {}
        for _, row in files.rows(f_broader_occ, ["conceptType", "conceptUri", "broaderType", "broaderUri"]):
            if row["conceptType"] == "Occupation" and row["broaderType"] == "Occupation":
                occ_parent[row["conceptUri"]] = row["broaderUri"]
            elif row["conceptType"] == "ISCOGroup":
                isco_parent[row["conceptUri"]] = row["broaderUri"]

        group_names = {row["conceptUri"]: row["preferredLabel"] for _, row in groups}
        group_slugs = unique_slugs([(uri, name) for uri, name in group_names.items()])
        dimensions = [
            DimensionRecord(
                source_id=uri,
                slug=group_slugs[uri],
                name=row["preferredLabel"],
                rationale=row.get("description") or None,
                kind="skill_group",
                parent=group_parent.get(uri) if group_parent.get(uri) in group_names else None,
            )
            for _, row in groups
            for uri in [row["conceptUri"]]
        ]
        isco_uris = {row["conceptUri"] for row in isco.values()}
        dimensions += [
            DimensionRecord(
                source_id=row["conceptUri"],
                slug=f"isco-{code}",
                name=row["preferredLabel"],
                rationale=row.get("description") or None,
                kind="isco_group",
                parent=isco_parent.get(row["conceptUri"]) if isco_parent.get(row["conceptUri"]) in isco_uris else None,
            )
            for code, row in sorted(isco.items())
        ]

        def groups_of(uri: str) -> list[str]:
            seen: set[str] = set()
            while uri and uri not in seen:  # a skill without groups takes its broader skill's
                seen.add(uri)
                if uri in skill_groups:
                    return [g for g in skill_groups[uri] if g in group_names]
                uri = skill_broader.get(uri, "")
            return []

        skill_slugs = unique_slugs([(r["conceptUri"], r["preferredLabel"]) for r in skills])

        def skill_records() -> Iterator[SkillRecord]:
            for r in skills:
                uri = r["conceptUri"]
                if r["skillType"] == "knowledge":
                    nature = "KNOWLEDGE"
                elif r["reuseLevel"] == "transversal":
                    nature = "SOFT_SKILL"
                else:
                    nature = "PRACTICE"
                category, volatility, lifespan, version_strategy = NATURE_PROFILE[nature]
                dims = groups_of(uri)
                aliases = [AliasRecord(r["preferredLabel"], "CANONICAL")]
                aliases += [AliasRecord(a, "SYNONYM") for a in split_labels(r["altLabels"])]
                aliases += [AliasRecord(a, "VARIANT") for a in split_labels(r["hiddenLabels"])]
                yield SkillRecord(
                    source_id=uri,
                    slug=skill_slugs[uri],
                    name=r["preferredLabel"],
                    nature=nature,
                    category=r["skillType"] or category,
                    sub_category=group_names[dims[0]] if dims else None,
                    volatility=volatility,
                    typical_lifespan=lifespan,
                    version_strategy=version_strategy,
                    description=r["description"] or None,
                    attributes={"skill_type": r["skillType"], "reuse_level": r["reuseLevel"]},
                    aliases=aliases,
                    dimensions=dims,
                )

        occ_slugs = unique_slugs([(r["conceptUri"], r["preferredLabel"]) for r in occupations])

        def role_records() -> Iterator[RoleRecord]:
            for r in occupations:
                group = r["iscoGroup"]
                domain = isco.get(group[:2], {}).get("preferredLabel")
                archetype = isco.get(group[:1], {}).get("preferredLabel")
                parent = occ_parent.get(r["conceptUri"])
                yield RoleRecord(
                    source_id=r["conceptUri"],
                    slug=occ_slugs[r["conceptUri"]],
                    name=r["preferredLabel"],
                    description=r["description"] or None,
                    domain=domain,
                    archetype=archetype,
                    code=r["code"] or None,
                    parent=parent if parent in occ_uris else None,
                    attributes={"isco_group": group},
                    aliases=split_labels(r["altLabels"]) + split_labels(r["hiddenLabels"]),
                    kras=[(s, "description") for s in description_sentences(r["description"])],
                )

        role_dims = [
            RoleDimensionLink(r["conceptUri"], isco[r["iscoGroup"]]["conceptUri"])
            for r in occupations
            if r["iscoGroup"] in isco
        ]
        relations = [
            SkillRelation(uri, broader)
            for uri, broader in sorted(skill_broader.items())
            if uri in skill_uris and broader in skill_uris
        ]
        notes = [
            f"{n} occupation–skill relation(s) name occupation {uri}, which {f_occ.name} does not define: skipped"
            for uri, n in sorted(dangling.items())
        ]
        return ImportBundle(
            notes=notes,
            source=self.source,
            version=version,
            content_hash=content_hash,
            dimensions=dimensions,
            skills=skill_records(),
            roles=role_records(),
            role_skills=[x for x in links if x.skill in skill_uris],
            role_dimensions=role_dims,
            skill_relations=relations,
        )
