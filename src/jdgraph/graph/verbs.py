"""Verb phrases for nominal skills: "plan lessons" is Lesson Planning, "manage the classroom" is Classroom
Management, "resolve complaints" is Complaint Resolution.

Job descriptions state duties as verb + object, catalogs (and ESCO's English labels, half the time) name them as
object + nominalisation. For every catalog alias that ends in a known nominalisation, the index holds the key
"<verb lemma> <object, singular>"; a JD phrase is looked up by its verb's lemma and its object with determiners
and prepositions dropped and plurals folded. Lemmas and singulars come from lemminflect's dictionary (a real
lemmatiser, not suffix rules); the nominalisation → verb table is derivation, which no lemmatiser does. Only those
steps: no synonyms, no guessing.
"""

from __future__ import annotations

from functools import lru_cache

from lemminflect import getAllLemmas, getLemma

from jdgraph.catalog.normalize import normalize_alias

# nominalisation (last word of an alias) → the verbs it nominalises. Derivation, which a lemmatiser does not do;
# the verbs' inflections ("manages", "managing", "managed") are lemminflect's.
NOMINALISATIONS: dict[str, tuple[str, ...]] = {
    "management": ("manage",), "planning": ("plan",), "assessment": ("assess",), "monitoring": ("monitor",),
    "administration": ("administer",), "sourcing": ("source",), "scheduling": ("schedule",),
    "forecasting": ("forecast",), "reconciliation": ("reconcile",), "inspection": ("inspect",),
    "preparation": ("prepare",), "arrangements": ("arrange",), "taking": ("take",), "keeping": ("keep",),
    "entry": ("enter",), "resolution": ("resolve",), "communication": ("communicate",), "onboarding": ("onboard",),
    "retention": ("retain",), "coordination": ("coordinate",), "documentation": ("document",),
    "deployment": ("deploy",), "migration": ("migrate",), "negotiation": ("negotiate",), "evaluation": ("evaluate",),
    "optimization": ("optimize", "optimise"), "analysis": ("analyse", "analyze"), "control": ("control",),
    "fulfillment": ("fulfil", "fulfill"), "handling": ("handle",), "modeling": ("model",), "gathering": ("gather",),
    "writing": ("write",), "operation": ("operate",),
}  # fmt: skip
NOMINAL_VERBS = frozenset(v for verbs in NOMINALISATIONS.values() for v in verbs)
_FILLER = {"the", "a", "an", "our", "their", "your", "its", "all", "with", "to", "for", "of", "and", "team's"}


@lru_cache(maxsize=65_536)
def verb_lemmas(word: str) -> tuple[str, ...]:
    """The verbs ``word`` is a form of, by lemminflect's dictionary ("administering" → administer; "models" →
    model); none for a word it knows only as another part of speech."""
    return tuple(getAllLemmas(word.casefold(), upos="VERB").get("VERB", ()))


@lru_cache(maxsize=65_536)
def noun_lemma(word: str) -> str:
    """A noun's singular ("complaints" → complaint, "analyses" → analysis); the word itself when unknown."""
    lemmas = getLemma(word.casefold(), upos="NOUN", lemmatize_oov=False)
    return lemmas[0] if lemmas else word.casefold()


def starts_verb_phrase(token: str) -> bool:
    """Can ``token`` begin a verb phrase the index resolves: a form of a nominalised verb ("managing"), or an
    inflected verb whose lemma may begin an alias ("administering" → "administer medication")?"""
    lemmas = verb_lemmas(token)
    return bool(lemmas) and (token.casefold() not in lemmas or any(v in NOMINAL_VERBS for v in lemmas))


def verb_object_keys(alias: str) -> list[str]:
    """Index keys for an alias such as "Lesson Planning" → ["planlesson"]; none if it is not a nominal skill."""
    words = alias.casefold().replace("-", " ").split()
    if len(words) < 2 or len(words) > 4:
        return []
    verbs = NOMINALISATIONS.get(words[-1])
    if not verbs:
        return []
    obj = [noun_lemma(w) for w in words[:-1] if w not in _FILLER]
    return [normalize_alias(" ".join([verb, *obj])) for verb in verbs] if obj else []


def phrase_keys(phrase: str) -> list[str]:
    """Lookup keys for a JD phrase that starts with a verb: "manage the classroom" → ["manageclassroom"]."""
    words = phrase.casefold().replace("-", " ").split()
    if len(words) < 2:
        return []
    lemmas = [v for v in verb_lemmas(words[0]) if v in NOMINAL_VERBS]
    obj = [noun_lemma(w) for w in words[1:] if w not in _FILLER]
    if not lemmas or not obj or words[-1] in _FILLER:
        return []
    return [normalize_alias(" ".join([lemma, *obj])) for lemma in dict.fromkeys(lemmas)]


def lemma_keys(phrase: str) -> list[str]:
    """Alias keys for an inflected verb phrase: its verb's lemma with the rest as written, and with the last word
    singular ("Administering medications" → administer medications, administer medication), so a JD's
    "troubleshoots issues" meets a taxonomy's "troubleshoot issues"."""
    words = phrase.split()
    if len(words) < 2:
        return []
    keys = []
    for verb in verb_lemmas(words[0]):
        keys.append(normalize_alias(" ".join([verb, *words[1:]])))
        keys.append(normalize_alias(" ".join([verb, *words[1:-1], noun_lemma(words[-1])])))
    return list(dict.fromkeys(keys))
