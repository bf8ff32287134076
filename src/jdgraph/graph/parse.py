"""parse: structured fields of a JD, and the gate that rejects text that is not a JD.

The deterministic implementation reads headings, bullets and regular patterns; countries come from pycountry,
certifications and title aliases from the catalog. The LLM implementation fills the same schema.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import lru_cache
from typing import Any

import pycountry

from jdgraph.catalog.normalize import normalize_alias
from jdgraph.catalog.queries import Catalog
from jdgraph.catalog.records import CURATED_SOURCES
from jdgraph.graph.schemas import (
    AboutCompany,
    Experience,
    JobLocation,
    ParsedJD,
    ResponsibilitySection,
    Salary,
    SourceMarker,
)
from jdgraph.graph.text import BULLET, is_heading, source_marker
from jdgraph.graph.verbs import starts_verb_phrase, verb_object_keys

_JD_CUES = re.compile(
    r"\b(responsibilit\w*|requirements?|qualifications?|experience|we are (?:looking|hiring|seeking)|"
    r"looking for|you will|you'll|the role|this role|job description|apply|candidates?|skills?|salary|"
    r"full[- ]time|part[- ]time|remote|hybrid|on[- ]?site|years of|team|position|benefits|hiring|degree|"
    r"must have|nice to have|duties|contract|employment)\b",
    re.I,
)
_ENGLISH_STOPWORDS = {"the", "and", "to", "of", "a", "in", "with", "for", "you", "we", "is", "on", "our", "are"}
_ROLE_NOUNS = (
    r"Developer|Engineer|Manager|Designer|Analyst|Scientist|Architect|Administrator|Specialist|Consultant|"
    r"Representative|Executive|Coordinator|Assistant|Nurse|Teacher|Driver|Electrician|Accountant|Recruiter|"
    r"Writer|Associate|Officer|Lead|Director|Technician|Programmer|Tester|Chef|Cook|Operator|Agent|Owner|"
    r"Master|Generalist|Partner|Advisor|Clerk|Bookkeeper|SRE|SDET|DBA"
)
_TITLE_IN_TEXT = re.compile(
    r"(?i:looking for|seeking|hiring|hire|recruiting|join us as|as an?|role of|position of)\s+(?i:an?\s+)?"
    r"(?i:(?:experienced|talented|skilled|motivated|passionate|dedicated|qualified|exceptional|senior)\s+)*"
    rf"(?P<title>(?:[A-Z][\w+#./&-]*\s+){{0,4}}(?:{_ROLE_NOUNS})s?)\b"
)
_COMPANY_LINE = re.compile(
    r"^\s*(?:company|employer|organi[sz]ation|hiring company)\s*(?:name)?\s*[:\-–]\s*(?P<name>[^\n]{2,80}?)\s*$",
    re.I | re.M,
)
# "Berlin, Germany": a capitalised name of one to three words right before a country, separated by a comma.
_CITY_BEFORE = re.compile(r"(?P<city>[A-Z][\w.'’-]+(?:[ -][A-Z][\w.'’-]+){0,2}),\s*$")
_LOCATION_LINE = re.compile(r"\blocation|based in|located in|office in\b", re.I)
_NOT_A_CITY = {
    "remote", "hybrid", "onsite", "on-site", "location", "locations", "office", "headquarters", "hq",
    # Regions written before a country in a list of where one may work ("EMEA, Germany").
    "europe", "emea", "apac", "latam", "americas", "asia", "africa", "anywhere", "worldwide", "global",
}  # fmt: skip
_TITLE_LINE = re.compile(r"^\s*(?:job\s+title|title|position|role)\s*[:\-–]\s*(?P<title>.{3,80})$", re.I | re.M)
_EXPERIENCE = re.compile(
    r"(?P<min>\d{1,2}(?:\.\d)?)\s*(?:\+|plus)?\s*(?:(?:-|–|to)\s*(?P<max>\d{1,2}))?\s*\+?\s*"
    r"(?:years?|yrs?)\b(?:\s+of)?",
    re.I,
)
_MINIMUM_WORDS = re.compile(r"\b(minimum|at least|min\.?)\s+(?:of\s+)?(?P<n>\d{1,2})\s*(?:years?|yrs?)", re.I)
_CURRENCY = {"$": "USD", "£": "GBP", "€": "EUR", "₹": "INR", "¥": "JPY", "A$": "AUD", "C$": "CAD", "CA$": "CAD"}
_SALARY = re.compile(
    r"(?P<cur>A\$|C\$|CA\$|[$£€₹¥]|\b(?:USD|EUR|GBP|INR|CAD|AUD|CHF|SGD|JPY)\b)\s?"
    r"(?P<lo>\d[\d,.]*)\s*(?P<lo_k>[kK]|LPA|lakh)?"
    r"(?:\s*(?:-|–|to)\s*(?:A\$|C\$|[$£€₹¥]|USD|EUR|GBP|INR|CAD|AUD)?\s?(?P<hi>\d[\d,.]*)\s*(?P<hi_k>[kK]|LPA|lakh)?)?"
    r"(?:\s*(?:per|/|a|an)\s*(?P<period>hour|hr|day|week|month|year|yr|annum))?",
)
_PERIOD = {
    "hour": "hour",
    "hr": "hour",
    "day": "day",
    "week": "week",
    "month": "month",
    "year": "year",
    "yr": "year",
    "annum": "year",
}
_EDUCATION = re.compile(
    r"(?P<deg>(?:Bachelor'?s?|Master'?s?|BSc|B\.?S\.?|MSc|M\.?S\.?|B\.?Tech|M\.?Tech|B\.?E\.?|MBA|Ph\.?D|"
    r"Doctorate|Associate'?s? degree|degree|diploma|High School Diploma|GED)\b[^.;\n]{0,80})",
)
_URL = re.compile(r"https?://[^\s<>()\"']+")
_WORK_MODE = [
    ("remote", re.compile(r"\b(fully remote|remote[- ]first|100% remote|work from home|wfh|remote)\b", re.I)),
    ("hybrid", re.compile(r"\bhybrid\b", re.I)),
    ("onsite", re.compile(r"\b(on[- ]?site|in[- ]office|office[- ]based)\b", re.I)),
]
_REQUIREMENT_HEADINGS = re.compile(r"requirement|qualification|must|skills|who you are|what you bring|experience", re.I)
_RESPONSIBILITY_HEADINGS = re.compile(
    r"responsibilit|duties|what you('ll| will)|day[- ]to[- ]day|role overview|the role|about the role|"
    r"key result|your impact|what does|job description|overview|summary|requirement|qualification",
    re.I,
)
_ABOUT_COMPANY = re.compile(
    r"^about\s+(?!the role|you|this role|the job|the position)(?P<name>.{2,60}?)\s*:?\s*$", re.I
)
_COMPANY_SENTENCE = re.compile(
    r"^(?P<name>[A-Z][\w&.'-]*(?:\s+[A-Z][\w&.'-]*){0,3})\s+(?:is|are)\s+(?:a|an|one of|the)\b"
)


@lru_cache(maxsize=1)
def _country_patterns() -> list[tuple[re.Pattern[str], dict[str, tuple[str, str]]]]:
    names: list[tuple[str, str, str]] = []
    extra = {
        "United States": ["USA", "U.S.", "US", "United States of America"],
        "United Kingdom": ["UK", "U.K."],
        "Türkiye": ["Turkey"],
        "Korea, Republic of": ["South Korea"],
        "Viet Nam": ["Vietnam"],
        "Russian Federation": ["Russia"],
        "Czechia": ["Czech Republic"],
        "United Arab Emirates": ["UAE"],
        "Netherlands": ["The Netherlands", "Holland"],
    }
    for country in pycountry.countries:
        display = getattr(country, "common_name", None) or country.name
        forms = {country.name, display, *extra.get(country.name, []), *extra.get(display, [])}
        for form in forms:
            names.append((form, display if country.name not in ("Türkiye",) else "Turkey", country.alpha_2))
    # Two alternations (capitals-only short forms such as "US"/"UK", and case-insensitive names), longest form
    # first so "Papua New Guinea" wins over "Guinea": two scans of the text instead of one per country name.
    names.sort(key=lambda n: -len(n[0]))
    exact = {form: (display, code) for form, display, code in names if len(form) <= 4}
    folded = {form.casefold(): (display, code) for form, display, code in names if len(form) > 4}
    out: list[tuple[re.Pattern[str], dict[str, tuple[str, str]]]] = []
    for table, flags in ((exact, 0), (folded, re.I)):
        alternation = "|".join(re.escape(f) for f in sorted(table, key=len, reverse=True))
        out.append((re.compile(rf"(?<![\w.])(?:{alternation})(?![\w])", flags), table))
    return out


def _country_mentions(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, country, ISO code) of every country mention, longest first where two overlap."""
    hits: list[tuple[int, int, str, str]] = []
    for pattern, forms in _country_patterns():
        case_insensitive = bool(pattern.flags & re.I)
        for m in pattern.finditer(text):
            display, code = forms[m.group(0).casefold() if case_insensitive else m.group(0)]
            hits.append((m.start(), m.end(), display, code))
    kept: list[tuple[int, int, str, str]] = []
    for start, end, display, code in sorted(hits, key=lambda h: (-(h[1] - h[0]), h[0])):
        if any(s < end and start < e for s, e, _, _ in kept):
            continue  # "Guinea" inside "Papua New Guinea"
        kept.append((start, end, display, code))
    return sorted(kept)


def find_countries(text: str) -> list[tuple[str, str, int]]:
    """(country, ISO code, position) of each country named in the text, in order of first mention."""
    found: dict[str, tuple[str, str, int]] = {}
    for start, _end, display, code in _country_mentions(text):
        found.setdefault(code, (display, code, start))
    return sorted(found.values(), key=lambda x: x[2])


def _number(raw: str, suffix: str | None) -> float | None:
    try:
        value = float(raw.replace(",", ""))
    except ValueError:
        return None
    if suffix and suffix.lower() == "k":
        value *= 1000
    elif suffix and suffix.lower() in ("lpa", "lakh"):
        value *= 100_000
    return value


def parse_salary(text: str) -> Salary | None:
    for m in _SALARY.finditer(text):
        lo = _number(m.group("lo"), m.group("lo_k") or m.group("hi_k"))
        hi = _number(m.group("hi"), m.group("hi_k")) if m.group("hi") else None
        if lo is None or (lo < 8 and not m.group("lo_k")):
            continue  # "$5" in prose is not a salary
        cur = m.group("cur")
        period = _PERIOD.get((m.group("period") or "").lower())
        if period is None and (m.group("lo_k") or lo >= 10_000):
            period = "year"
        return Salary(min=lo, max=hi, currency=_CURRENCY.get(cur, cur.upper()), period=period, raw=m.group(0).strip())
    return None


def parse_experience(text: str) -> Experience | None:
    mins: list[tuple[float, float | None, str]] = []
    for m in _EXPERIENCE.finditer(text):
        tail = text[m.end() : m.end() + 60].lower()
        head = text[max(0, m.start() - 40) : m.start()].lower()
        if re.match(r"\s*(?:old|ago|age|of age|history|of history|in business)\b", tail):
            continue  # "founded 20 years ago", "18 years of age"
        # "3+ years", "3-5 years" and "N years of <anything>" state experience in a JD; a bare "5 years" needs a cue.
        stated = "+" in m.group(0) or m.group("max") is not None or m.group(0).lower().rstrip().endswith("of")
        if not stated and not re.search(
            r"experience|work|industry|professional|relevant|hands-on|background|in |with ", tail + head
        ):
            continue
        low = float(m.group("min"))
        high = float(m.group("max")) if m.group("max") else None
        if low > 40:
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        line_end = text.find("\n", m.end())
        raw = text[line_start : line_end if line_end != -1 else len(text)].strip().lstrip("•-* ")
        mins.append((low, high, raw))
    for m in _MINIMUM_WORDS.finditer(text):
        mins.append((float(m.group("n")), None, m.group(0)))
    if not mins:
        return None
    # The strictest lower bound is the requirement ("3+ years overall, 2+ with Rust" → 3).
    low, high, raw = max(mins, key=lambda x: (x[0], x[1] or 0))
    return Experience(min=low, max=high, raw=raw)


def parse_work_mode(text: str) -> str | None:
    hits = {mode for mode, pattern in _WORK_MODE if pattern.search(text)}
    if "hybrid" in hits:
        return "hybrid"
    if "remote" in hits and "onsite" not in hits:
        return "remote"
    if "onsite" in hits:
        return "onsite"
    return None


def find_title(text: str, catalog_titles: set[str]) -> str | None:
    m = _TITLE_LINE.search(text)
    if m:
        return m.group("title").strip().rstrip(".")
    for line in text.split("\n")[:5]:
        candidate = line.strip().strip("#*_ ").strip()
        if not candidate or len(candidate.split()) > 8 or candidate.endswith((".", ":")):
            continue
        words = candidate.replace("–", "-").split(" - ")[0].split(" | ")[0].strip()
        if re.search(rf"\b(?:{_ROLE_NOUNS})s?\b", words) or words.casefold() in catalog_titles:
            return words
    m = _TITLE_IN_TEXT.search(text)
    if m:
        return m.group("title").strip()
    return _title_named_again(text)


def _title_named_again(text: str) -> str | None:
    """A short first line that the text names again ("Beekeeper" … "hiring a seasonal beekeeper"): a title whose
    noun is in no list (role nouns, the catalog's titles)."""
    first = next((ln.strip().strip("#*_ ").strip() for ln in text.split("\n") if ln.strip()), "")
    words = first.split()
    if not 1 <= len(words) <= 5 or first.endswith((".", ":", "!", "?")) or not first[:1].isupper():
        return None
    head = words[-1].strip(",;()").casefold()
    rest = text[text.find(first) + len(first) :]
    if len(head) >= 4 and re.search(rf"\b{re.escape(head)}s?\b", rest, re.I):
        return first
    return None


def city_before(text: str, position: int) -> str | None:
    """The city written right before a country mention at ``position`` ("Berlin, Germany"), if any.

    A country before it is no city: "India, Pakistan" is a list of two countries (the name before the comma is
    checked as a country mention ending there, so "Bosnia and Herzegovina, Serbia" is one too), while
    "Mexico City, Mexico" keeps its city."""
    window = text[max(0, position - 60) : position]
    m = _CITY_BEFORE.search(window)
    if m is None:
        return None
    city = m.group("city").strip()
    if city.casefold() in _NOT_A_CITY:
        return None
    if any(end == m.end("city") for _start, end, _, _ in _country_mentions(window)):
        return None
    return city


def job_places(text: str) -> list[tuple[str, str, str | None]]:
    """Where the job is: the places named on location lines ("Location: …", "based in …"), else anywhere in the
    text. The cities are read in the same text as the countries, so their positions agree."""
    location_lines = [ln for ln in text.split("\n") if _LOCATION_LINE.search(ln)]
    if location_lines:
        return find_places("\n".join(location_lines)) or find_places(text)
    return find_places(text)


def find_places(text: str) -> list[tuple[str, str, str | None]]:
    """(country, ISO code, city or None) of each country named in the text, in order of first mention. A country
    named twice keeps the city of whichever mention has one ("Mexico City, Mexico": the second)."""
    places: dict[str, tuple[str, str, str | None]] = {}
    for start, _end, display, code in _country_mentions(text):
        known = places.get(code)
        if known is None or known[2] is None:
            places[code] = (display, code, city_before(text, start))
    return list(places.values())


_YEARS_CUE = re.compile(r"\b\d{1,2}\s*\+?\s*(?:(?:-|–|to)\s*\d{1,2}\s*)?(?:years?|yrs?)\b", re.I)


def gate(text: str, *, has_title: bool = False) -> tuple[bool, str | None]:
    """Is this a job description? (pass, reason when not).

    Three distinct cues are needed: JD vocabulary ("requirements", "you will"...), a stated number of years, and
    a recognised job title (``has_title``: a role noun or a catalog title on a title line). Short, terse JDs
    ("DevOps Engineer / - Automate... / Requirements: 4+ years") pass on title + years + one word; a recipe or
    a news story, with none of them, does not."""
    words = re.findall(r"[A-Za-z]+", text)
    letters = sum(ch.isalpha() for ch in text)
    ascii_letters = sum(ch.isascii() and ch.isalpha() for ch in text)
    if letters and ascii_letters / letters < 0.6:
        return False, "the text is not in English (jdgraph's catalog and parser are English-only)"
    if words:
        stop = sum(w.lower() in _ENGLISH_STOPWORDS for w in words) / len(words)
        if len(words) >= 30 and stop < 0.04:
            return False, "the text does not read as English prose (too few common English words)"
    if len(words) < 8:
        return False, f"the text is too short to be a job description ({len(words)} words)"
    cues = {m.group(0).lower() for m in _JD_CUES.finditer(text)}
    if _YEARS_CUE.search(text):
        cues.add("<years>")
    if has_title:
        cues.add("<title>")
    if len(cues) < 3:
        return False, "the text has none of the marks of a job description (role, responsibilities, requirements)"
    return True, None


def deterministic_parse(text: str, *, title: str | None, company: str | None, catalog: Catalog) -> ParsedJD:
    index = catalog_index(catalog)
    role = title or find_title(text, index.role_titles)
    ok, reason = gate(text, has_title=role is not None)
    if not ok:
        return ParsedJD(jd_type="reject", reject_reason=reason, role=title)
    lines = text.split("\n")
    # Sections.
    sections: list[ResponsibilitySection] = []
    about: AboutCompany | None = None
    # An explicit "Company: …" line beats every guess (the about-us heading, "X is a …" sentences).
    line_match = _COMPANY_LINE.search(text)
    company_name = company or (line_match.group("name").strip().rstrip(".") if line_match else None)
    current_heading: str | None = None
    buffer: list[str] = []

    def flush() -> None:
        nonlocal about, company_name
        body = "\n".join(buffer).strip()
        if not body:
            return
        heading = current_heading
        about_match = _ABOUT_COMPANY.match(heading or "")
        if about_match and about is None:
            company_name = company_name or about_match.group("name").strip(" :")
            about = AboutCompany(
                text=body.split("\n\n")[0].strip(),
                word_count=len(body.split("\n\n")[0].split()),
                source_marker=SourceMarker(**source_marker(body.split("\n\n")[0])),
            )
            return
        if heading is None or _RESPONSIBILITY_HEADINGS.search(heading):
            bullets = sum(1 for line in body.split("\n") if BULLET.match(line))
            sections.append(
                ResponsibilitySection(
                    heading=heading,
                    heading_was_present=heading is not None,
                    bullet_count=bullets,
                    text=body,
                    word_count=len(body.split()),
                    source_marker=SourceMarker(**source_marker(body)),
                )
            )

    for line in lines:
        if is_heading(line):
            flush()
            current_heading = line.strip().strip("#*_: ").strip()
            buffer = []
        else:
            buffer.append(line)
    flush()
    if company_name is None:
        for line in lines[:15]:
            m = _COMPANY_SENTENCE.match(line.strip())
            if m and m.group("name").split()[0].lower() not in ("we", "you", "this", "the", "our", "it"):
                company_name = m.group("name")
                break
    mode = parse_work_mode(text)
    locations = [JobLocation(country=c, iso_code=code, city=city, work_mode=mode) for c, code, city in job_places(text)]
    if not locations and mode:
        locations = [JobLocation(work_mode=mode)]
    # Education and certifications (certifications are catalog-grounded).
    education = list(dict.fromkeys(m.group("deg").strip().rstrip(",") for m in _EDUCATION.finditer(text)))[:5]
    certifications = list(dict.fromkeys(name for name, pattern in index.certifications if pattern.search(text)))
    return ParsedJD(
        jd_type="pass",
        role=role,
        role_aliases=[],
        company_name=company_name,
        about_company=about,
        experience=parse_experience(text),
        job_locations=locations,
        education=education,
        certifications=certifications,
        salary=parse_salary(text),
        roles_and_responsibilities=sections,
        urls=list(dict.fromkeys(_URL.findall(text))),
    )


TOKEN = re.compile(r"(?<![\w.#+])\.?[A-Za-z0-9](?:[\w+#./&'’-]*[\w+#])?")


def strip_possessive(phrase: str) -> str:
    """ "Rust's" → "Rust", "developers'" → "developers": how the extractor reads a JD phrase before lookup."""
    return re.sub(r"['’]s$", "", phrase.rstrip("'’"))


def lexical_match_case(row: dict[str, Any]) -> bool:
    """Whether the extractor finds an alias in JD text only in its exact casing.

    Curated aliases are trusted as stored. A taxonomy's short all-capitals alias ("IT" for computer technology,
    "SEN") matches only as written, so the pronoun "it" is not a skill. Dropping a taxonomy's one-word ordinary
    alt labels ("current", "care", "data") was tried: evidence precision on skillspan-dev rose 0.50 → 0.61 but
    recall halved (annotators mark "design", "agile", "data" as skills), so they stay.
    """
    alias = str(row["alias"])
    if row.get("alias_source") in CURATED_SOURCES:
        return bool(row["match_case"])  # the starter marks its case-sensitive aliases itself
    acronym = alias.isupper() and len(alias) <= 5
    return bool(row["match_case"]) or acronym


class CatalogIndex:
    """In-memory indexes of catalog text the deterministic parser and extractor scan the JD with."""

    def __init__(self, catalog: Catalog) -> None:
        rows = catalog.skill_alias_rows()
        titles = catalog.role_title_texts()
        self.aliases: dict[str, list[dict[str, object]]] = {}
        for r in rows:
            self.aliases.setdefault(r["alias_norm"], []).append(
                {**r, "match_case": lexical_match_case(r), "words": len(str(r["alias"]).split())}
            )
        self.max_words = max((len(str(r["alias"]).split()) for r in rows), default=1)
        # Sorted alias keys, for a prefix test: the extractor skips JD positions whose token cannot begin any
        # alias key (keys drop separators, so "Multi threading" reaches "multithreading" token by token).
        self._sorted_keys = sorted(self.aliases)
        # "plan lessons" → Lesson Planning (see jdgraph.graph.verbs); exact aliases win over these.
        self.verb_phrases: dict[str, list[dict[str, object]]] = {}
        for r in rows:
            for key in verb_object_keys(str(r["alias"])):
                if key not in self.aliases:
                    self.verb_phrases.setdefault(key, []).append(dict(r))
        self.role_titles = {t.casefold() for t in titles}
        self.role_title_words = {w for t in self.role_titles for w in t.split()}
        # Certifications are catalog skills of nature CERTIFICATION; short or case-marked aliases match by case.
        self.certifications: list[tuple[str, re.Pattern[str]]] = []
        for r in rows:
            if r["nature"] == "CERTIFICATION":
                flags = 0 if (r["match_case"] or len(str(r["alias"])) <= 4) else re.I
                pattern = re.compile(rf"(?<![\w]){re.escape(str(r['alias']))}(?![\w])", flags)
                self.certifications.append((str(r["display_name"]), pattern))

    def may_start_phrase(self, token: str) -> bool:
        """Can a catalog phrase (an alias, or a verb phrase such as "plan lessons") start with this JD token?"""
        key = normalize_alias(strip_possessive(token))
        return self.is_key_prefix(key) or starts_verb_phrase(strip_possessive(token))

    def starts_verb_phrase(self, token: str) -> bool:
        return starts_verb_phrase(token)

    def is_key_prefix(self, key: str) -> bool:
        """Does some alias key start with ``key``?"""
        i = bisect_left(self._sorted_keys, key)
        return i < len(self._sorted_keys) and self._sorted_keys[i].startswith(key)


def catalog_index(catalog: Catalog) -> CatalogIndex:
    """Cached per catalog; rebuilt when the catalog's content changes (new aliases approved, imports)."""
    return catalog.cached("catalog_index", lambda: CatalogIndex(catalog))


def requirement_section(heading: str | None) -> bool:
    return bool(heading and _REQUIREMENT_HEADINGS.search(heading))
