"""Verb phrases for nominal skills: "plan lessons" is Lesson Planning, "manage the classroom" is Classroom
Management, "resolve complaints" is Complaint Resolution.

Job descriptions state duties as verb + object, catalogs (and ESCO's English labels, half the time) name them as
object + nominalisation. For every catalog alias that ends in a known nominalisation, the index holds the key
"<verb lemma> <object, singular>"; a JD phrase is looked up by its verb's lemma and its object with determiners
and prepositions dropped and plurals folded. Only those steps: no synonyms, no guessing.
"""

from __future__ import annotations

from jdgraph.catalog.normalize import normalize_alias

# nominalisation (last word of an alias) → the verb forms that state it in a JD, lemma first.
NOMINALISATIONS: dict[str, tuple[str, ...]] = {
    "management": ("manage", "manages", "managing", "managed"),
    "planning": ("plan", "plans", "planning", "planned"),
    "assessment": ("assess", "assesses", "assessing", "assessed"),
    "monitoring": ("monitor", "monitors", "monitoring", "monitored"),
    "administration": ("administer", "administers", "administering", "administered"),
    "sourcing": ("source", "sources", "sourcing", "sourced"),
    "scheduling": ("schedule", "schedules", "scheduling", "scheduled"),
    "forecasting": ("forecast", "forecasts", "forecasting", "forecasted"),
    "reconciliation": ("reconcile", "reconciles", "reconciling", "reconciled"),
    "inspection": ("inspect", "inspects", "inspecting", "inspected"),
    "preparation": ("prepare", "prepares", "preparing", "prepared"),
    "arrangements": ("arrange", "arranges", "arranging", "arranged"),
    "taking": ("take", "takes", "taking", "took"),
    "keeping": ("keep", "keeps", "keeping", "kept"),
    "entry": ("enter", "enters", "entering", "entered"),
    "resolution": ("resolve", "resolves", "resolving", "resolved"),
    "communication": ("communicate", "communicates", "communicating", "communicated"),
    "onboarding": ("onboard", "onboards", "onboarding", "onboarded"),
    "retention": ("retain", "retains", "retaining", "retained"),
    "coordination": ("coordinate", "coordinates", "coordinating", "coordinated"),
    "documentation": ("document", "documents", "documenting", "documented"),
    "deployment": ("deploy", "deploys", "deploying", "deployed"),
    "migration": ("migrate", "migrates", "migrating", "migrated"),
    "negotiation": ("negotiate", "negotiates", "negotiating", "negotiated"),
    "evaluation": ("evaluate", "evaluates", "evaluating", "evaluated"),
    "optimization": ("optimize", "optimise", "optimizes", "optimises", "optimizing", "optimising", "optimized"),
    "analysis": ("analyse", "analyze", "analyses", "analyzes", "analysing", "analyzing", "analysed", "analyzed"),
    "control": ("control", "controls", "controlling", "controlled"),
    "fulfillment": ("fulfil", "fulfill", "fulfils", "fulfills", "fulfilling", "fulfilled"),
    "handling": ("handle", "handles", "handling", "handled"),
    "modeling": ("model", "models", "modeling", "modelling", "modeled", "modelled"),
    "gathering": ("gather", "gathers", "gathering", "gathered"),
    "writing": ("write", "writes", "writing", "wrote"),
    "operation": ("operate", "operates", "operating", "operated"),
}
# verb form → the lemmas it can be ("models" is a form of "model" only; "process" would be several).
_LEMMAS: dict[str, list[str]] = {}
for _forms in NOMINALISATIONS.values():
    for _form in _forms:
        _LEMMAS.setdefault(_form, []).append(_forms[0])
VERB_FORMS = frozenset(normalize_alias(form) for form in _LEMMAS)
_FILLER = {"the", "a", "an", "our", "their", "your", "its", "all", "with", "to", "for", "of", "and", "team's"}


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def verb_object_keys(alias: str) -> list[str]:
    """Index keys for an alias such as "Lesson Planning" → ["planlesson"]; none if it is not a nominal skill."""
    words = alias.casefold().replace("-", " ").split()
    if len(words) < 2 or len(words) > 4:
        return []
    forms = NOMINALISATIONS.get(words[-1])
    if not forms:
        return []
    obj = [_singular(w) for w in words[:-1] if w not in _FILLER]
    return [normalize_alias(" ".join([forms[0], *obj]))] if obj else []


def phrase_keys(phrase: str) -> list[str]:
    """Lookup keys for a JD phrase that starts with a verb: "manage the classroom" → ["manageclassroom"]."""
    words = phrase.casefold().replace("-", " ").split()
    if len(words) < 2:
        return []
    lemmas = _LEMMAS.get(words[0])
    if not lemmas:
        return []
    obj = [_singular(w) for w in words[1:] if w not in _FILLER]
    if not obj or words[-1] in _FILLER:
        return []
    return [normalize_alias(" ".join([lemma, *obj])) for lemma in dict.fromkeys(lemmas)]
