"""Client output enrichment: nature of work, AI index 0–5, tech-stack maturity, skill clusters.

The deterministic rules compute every value from the JD text and the matched catalog skills, with evidence.
An LLM may replace the judgement fields (:func:`merge_llm_enrichment`); the skill clusters always come from the
catalog's links, and the AI index is always the clamped sum of its breakdown.
"""

from __future__ import annotations

import re

from jdgraph.graph.schemas import Enrichment, LLMEnrichment, ResolvedSkill
from jdgraph.graph.text import Sentence

_AI_SKILLS = {
    "machine-learning",
    "deep-learning",
    "large-language-models",
    "generative-ai",
    "prompt-engineering",
    "retrieval-augmented-generation",
    "langchain",
    "ai-agents",
    "natural-language-processing",
    "computer-vision",
    "pytorch",
    "tensorflow",
    "fine-tuning",
    "hugging-face-transformers",
    "mlops",
}
_AI_TITLE = re.compile(r"\b(AI|ML|machine learning|LLM|GenAI|data scientist|deep learning)\b", re.I)
_AI_PRODUCT = re.compile(
    r"\b(AI|LLM|machine learning|generative|model(?:s)?)\b[^.]{0,40}\b(product|platform|system|"
    r"feature|assistant|agent)s?\b",
    re.I,
)
_AI_TEAM = re.compile(r"\b(AI|ML|machine learning|research)\s+(team|lab|group)\b", re.I)
_NATURE = [
    ("Research and experimentation", re.compile(r"\b(research|experiment|prototype|explore|publish)\w*", re.I)),
    (
        "Performance and production support",
        re.compile(
            r"\b(debug|fix|refactor|maintain|troubleshoot|optimi[sz]e|"
            r"monitor|on-call|incident)\w*",
            re.I,
        ),
    ),
    ("Building new products", re.compile(r"\b(build|design|develop|implement|launch|create|ship)\w*", re.I)),
    (
        "Operations and service delivery",
        re.compile(
            r"\b(operate|coordinate|schedule|process|handle|support|serve|"
            r"deliver|care|assist)\w*",
            re.I,
        ),
    ),
    ("Selling and growing accounts", re.compile(r"\b(sell|prospect|close|negotiate|quota|pipeline|revenue)\w*", re.I)),
    ("Teaching and advising", re.compile(r"\b(teach|coach|mentor|train|educate|advise)\w*", re.I)),
]
_MODERN = {
    "kubernetes",
    "docker",
    "rust",
    "go",
    "typescript",
    "react",
    "terraform",
    "aws",
    "gcp",
    "azure",
    "microservices",
    "ci-cd",
    "gitops",
    "serverless",
    "nextjs",
    "fastapi",
    "property-based-testing",
    "asynchronous-programming",
    "large-language-models",
    "generative-ai",
}
_LEGACY = {"cobol", "jquery", "objective-c", "plsql", "visual-basic", "mainframe", "svn", "perl", "hadoop"}


def enrich(skills: list[ResolvedSkill], sentences: list[Sentence], title: str | None) -> Enrichment:
    matched = [s for s in skills if s.canonical_slug]
    slugs = {s.canonical_slug for s in matched}
    # Nature of work: the theme with most verbs in responsibility sentences.
    scores = {name: 0 for name, _ in _NATURE}
    evidence: dict[str, str] = {}
    for s in sentences:
        for name, pattern in _NATURE:
            n = len(pattern.findall(s.text))
            if n:
                scores[name] += n
                evidence.setdefault(name, s.text)
    nature = max(scores, key=lambda k: (scores[k], k)) if any(scores.values()) else "General"
    # AI index: additive, capped at 5.
    text = " ".join(s.text for s in sentences)
    primary_ai = sum(1 for s in matched if s.canonical_slug in _AI_SKILLS and s.is_primary)
    secondary_ai = sum(1 for s in matched if s.canonical_slug in _AI_SKILLS and not s.is_primary)
    breakdown = {
        "title_match": 1.5 if title and _AI_TITLE.search(title) else 0.0,
        "ai_skill_primary": min(1.5, 0.5 * primary_ai),
        "ai_skill_secondary": min(0.5, 0.25 * secondary_ai),
        "on_ai_team": 0.5 if _AI_TEAM.search(text) else 0.0,
        "builds_ai_products": 1.0 if _AI_PRODUCT.search(text) else (0.2 if re.search(r"\bAI\b", text) else 0.0),
    }
    ai_index = round(min(5.0, sum(breakdown.values())), 2)
    # Tech stack maturity.
    modern, legacy = len(slugs & _MODERN), len(slugs & _LEGACY)
    tech = [
        s
        for s in matched
        if s.dimensions
        and any(
            d.slug
            in {
                "systems-programming",
                "backend-development",
                "frontend-development",
                "devops-and-ci-cd",
                "cloud-platforms",
                "machine-learning",
                "data-engineering",
                "mobile-development",
            }
            for d in s.dimensions
        )
    ]
    if not tech:
        maturity, reason = "Not applicable", "No software stack is named in the JD."
    elif legacy > modern:
        maturity, reason = "Legacy", f"{legacy} legacy technologies against {modern} modern ones."
    elif modern >= 2 or (modern and ai_index >= 2):
        maturity, reason = "Modern Cloud Native", f"Modern stack: {', '.join(sorted(str(x) for x in slugs & _MODERN))}."
    else:
        maturity, reason = "Established", "A mainstream stack without strong modern or legacy markers."
    clusters: dict[str, list[str]] = {}
    for skill in matched:
        for d in skill.dimensions[:1]:
            clusters.setdefault(d.name, []).append(skill.canonical_name or skill.name)
    return Enrichment(
        nature_of_work=nature,
        nature_of_work_evidence=evidence.get(nature),
        ai_index=ai_index,
        ai_index_breakdown=breakdown,
        tech_stack_maturity=maturity,
        tech_stack_reasoning=reason,
        skill_clusters=clusters,
    )


# The AI-index factors and each one's ceiling: the model's breakdown is clamped to these, never trusted as is.
AI_INDEX_CAPS = {
    "title_match": 1.5,
    "ai_skill_primary": 1.5,
    "ai_skill_secondary": 0.5,
    "on_ai_team": 0.5,
    "builds_ai_products": 1.0,
}


def merge_llm_enrichment(rules: Enrichment, llm: LLMEnrichment, jd_text: str) -> Enrichment:
    """The model's judgement fields over the rule-based enrichment, kept within the same contract."""
    given = llm.ai_index_breakdown.model_dump()
    breakdown = {k: round(min(cap, max(0.0, float(given[k]))), 2) for k, cap in AI_INDEX_CAPS.items()}
    evidence = llm.nature_of_work_evidence
    if evidence and evidence.strip() not in jd_text:
        evidence = None  # a sentence the JD does not contain is not evidence
    return rules.model_copy(
        update={
            "nature_of_work": llm.nature_of_work,
            "nature_of_work_evidence": evidence,
            "ai_index": round(min(5.0, sum(breakdown.values())), 2),
            "ai_index_breakdown": breakdown,
            "tech_stack_maturity": llm.tech_stack_maturity,
            "tech_stack_reasoning": llm.tech_stack_reasoning,
        }
    )
