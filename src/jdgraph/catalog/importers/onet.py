"""O*NET from its database text files (tab-separated, official file names).

Mapping: Occupation Data → roles (``source_id`` and ``code`` = the O*NET-SOC code, description; a detailed code
``NN-NNNN.0X`` has the ``.00`` occupation as parent; the SOC major group → domain). Alternate Titles (and their
short titles) and Sample of Reported Titles → title aliases. Task Statements → KRAs (kind core/supplemental).
Technology Skills → skills (the example as canonical name, the product without its vendor as an alias, the Hot
Technology flag kept), their Commodity Title → a dimension, and role↔skill and role↔dimension links.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from jdgraph.catalog.importers.base import SourceFiles, unique_slugs
from jdgraph.catalog.normalize import normalize_alias
from jdgraph.catalog.records import (
    NATURE_PROFILE,
    AliasRecord,
    DimensionRecord,
    ImportBundle,
    RoleDimensionLink,
    RoleRecord,
    RoleSkillLink,
    SkillRecord,
)

# SOC 2018 major groups (the first two digits of an O*NET-SOC code); O*NET's files do not carry their names.
SOC_MAJOR_GROUPS = {
    "11": "Management", "13": "Business and Financial Operations", "15": "Computer and Mathematical",
    "17": "Architecture and Engineering", "19": "Life, Physical, and Social Science",
    "21": "Community and Social Service", "23": "Legal", "25": "Educational Instruction and Library",
    "27": "Arts, Design, Entertainment, Sports, and Media", "29": "Healthcare Practitioners and Technical",
    "31": "Healthcare Support", "33": "Protective Service", "35": "Food Preparation and Serving Related",
    "37": "Building and Grounds Cleaning and Maintenance", "39": "Personal Care and Service",
    "41": "Sales and Related", "43": "Office and Administrative Support", "45": "Farming, Fishing, and Forestry",
    "47": "Construction and Extraction", "49": "Installation, Maintenance, and Repair", "51": "Production",
    "53": "Transportation and Material Moving", "55": "Military Specific",
}  # fmt: skip
# Technology examples are tools a role uses, not requirements: linked as optional.
TECHNOLOGY_WEIGHT = 0.5


def product_alias(example: str) -> str | None:
    """The product without its vendor: "Adobe Systems Adobe Acrobat" → "Adobe Acrobat" (the vendor's first word
    repeats where the product name starts), "Microsoft Excel" → "Excel"; None when nothing shorter is safe."""
    words = example.split()
    if len(words) < 2:
        return None
    for i in range(1, len(words)):
        if words[i] == words[0] and i + 1 < len(words):
            return " ".join(words[i:])
    if words[0] in _VENDORS and len(words[1]) > 1:
        return " ".join(words[1:])
    return None


_VENDORS = {
    "Microsoft", "Oracle", "IBM", "SAP", "Google", "Amazon", "Apple", "Autodesk", "Atlassian", "Salesforce",
    "Intuit", "Adobe", "Cisco", "Red", "VMware", "Dassault", "Bentley", "Esri", "Epic", "Cerner", "Sage",
    "Corel", "Symantec", "McAfee", "Apache", "JetBrains", "Tableau", "MathWorks", "Wolfram", "Trimble",
}  # fmt: skip


@dataclass
class OnetImporter:
    """``only``: O*NET-SOC code prefixes (``["15-12"]``) to import a slice: those occupations and their skills."""

    path: Path
    only: Sequence[str] = ()
    source: str = "onet"

    def bundle(self) -> ImportBundle:
        files = SourceFiles(self.path)
        f_occ = files.find(r"occupation data\.txt")
        f_alt = files.find(r"alternate titles\.txt")
        f_rep = files.find(r"sample of reported titles\.txt")
        f_task = files.find(r"task statements\.txt")
        f_tech = files.find(r"technology skills\.txt")
        used = [f_occ, f_alt, f_rep, f_task, f_tech]
        readme = files.find_optional(r"read me\.txt")
        version = "O*NET"
        if readme is not None:
            with files.open(readme) as fh:
                first = fh.readline().strip()
            version = first.removesuffix(" Database") or version
        content_hash = files.digest(used, only=self.only)

        def rows(entry, cols, nonempty):
            for line, row in files.rows(entry, cols, delimiter="\t", nonempty=nonempty):
                if not self.only or row["O*NET-SOC Code"].startswith(tuple(self.only)):
                    yield line, row

        soc = "O*NET-SOC Code"
        occupations = [row for _, row in rows(f_occ, [soc, "Title", "Description"], [soc, "Title"])]
        codes = {r[soc] for r in occupations}
        aliases: dict[str, list[str]] = defaultdict(list)
        for _, row in rows(f_alt, [soc, "Alternate Title", "Short Title"], [soc, "Alternate Title"]):
            aliases[row[soc]].append(row["Alternate Title"])
            if row["Short Title"] not in ("", "n/a"):
                aliases[row[soc]].append(row["Short Title"])
        for _, row in rows(f_rep, [soc, "Reported Job Title"], [soc, "Reported Job Title"]):
            aliases[row[soc]].append(row["Reported Job Title"])
        kras: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        for _, row in rows(f_task, [soc, "Task", "Task Type"], [soc, "Task"]):
            kind = row["Task Type"].strip().lower()
            kras[row[soc]].append((row["Task"], kind if kind in ("core", "supplemental") else None))

        tech: dict[str, dict[str, object]] = {}
        role_skills: list[RoleSkillLink] = []
        role_dims: set[tuple[str, str]] = set()
        commodities: dict[str, str] = {}
        cols = [soc, "Example", "Commodity Code", "Commodity Title", "Hot Technology"]
        for _, row in rows(f_tech, cols, [soc, "Example", "Commodity Code"]):
            key = "onet:tech:" + (normalize_alias(row["Example"]) or row["Example"])
            entry = tech.setdefault(key, {"name": row["Example"], "commodities": [], "hot": False})
            commodity = "unspsc:" + row["Commodity Code"]
            commodities[commodity] = row["Commodity Title"]
            if commodity not in entry["commodities"]:  # type: ignore[operator]
                entry["commodities"].append(commodity)  # type: ignore[attr-defined]
            entry["hot"] = bool(entry["hot"]) or row["Hot Technology"] == "Y"
            role_skills.append(RoleSkillLink(row[soc], key, "optional", TECHNOLOGY_WEIGHT))
            role_dims.add((row[soc], commodity))

        dim_slugs = unique_slugs(list(commodities.items()))
        dimensions = [
            DimensionRecord(source_id=c, slug=dim_slugs[c], name=title, kind="commodity")
            for c, title in sorted(commodities.items())
        ]
        skill_slugs = unique_slugs([(k, str(v["name"])) for k, v in tech.items()])

        def skill_records() -> Iterator[SkillRecord]:
            category, volatility, lifespan, version_strategy = NATURE_PROFILE["TOOL"]
            for key, entry in sorted(tech.items()):
                name = str(entry["name"])
                names = [AliasRecord(name, "CANONICAL")]
                product = product_alias(name)
                if product:
                    # A one-word product ("Excel", "Word") is an ordinary word too: it matches only as written.
                    names.append(AliasRecord(product, "VARIANT", match_case=" " not in product))
                dims = list(entry["commodities"])  # type: ignore[call-overload]
                yield SkillRecord(
                    source_id=key,
                    slug=skill_slugs[key],
                    name=name,
                    nature="TOOL",
                    category=category,
                    sub_category=commodities[dims[0]],
                    volatility=volatility,
                    typical_lifespan=lifespan,
                    version_strategy=version_strategy,
                    attributes={"hot_technology": bool(entry["hot"])},
                    aliases=names,
                    dimensions=dims,
                )

        occ_slugs = unique_slugs([(r[soc], r["Title"]) for r in occupations])

        def role_records() -> Iterator[RoleRecord]:
            for r in occupations:
                code = r[soc]
                parent = code[:-2] + "00"
                yield RoleRecord(
                    source_id=code,
                    slug=occ_slugs[code],
                    name=r["Title"],
                    description=r["Description"] or None,
                    domain=SOC_MAJOR_GROUPS.get(code[:2]),
                    code=code,
                    parent=parent if parent != code and parent in codes else None,
                    aliases=aliases.get(code, []),
                    kras=kras.get(code, []),
                )

        return ImportBundle(
            source=self.source,
            version=version,
            content_hash=content_hash,
            dimensions=dimensions,
            skills=skill_records(),
            roles=role_records(),
            role_skills=[x for x in role_skills if x.role in codes],
            role_dimensions=[
                RoleDimensionLink(role, dim, "optional", TECHNOLOGY_WEIGHT) for role, dim in sorted(role_dims)
            ],
        )
