"""Which of a JD's sentences say what the job is: computed once, by the parse node, and carried in the state.

Extract, match, adjudicate and persist read the responsibility sentences from the state; the API's batch warm-up
computes the same ones ahead (:func:`texts_to_embed`), so a window's sentences are embedded in one model call.
"""

from __future__ import annotations

from collections.abc import Sequence

from jdgraph.graph.extract import implies_skills
from jdgraph.graph.parse import requirement_section
from jdgraph.graph.schemas import ParsedJD
from jdgraph.graph.text import Sentence, sentences

_NON_RESPONSIBILITY = (
    "about",
    "benefit",
    "perk",
    "offer",
    "salary",
    "compensation",
    "how to apply",
    "why",
    "equal opportunity",
    "location",
    "evaluation",
    "process",
)


def responsibility_sentences(text: str) -> list[Sentence]:
    """The JD's sentences outside the company blurb, perks, offer and process sections."""
    return [s for s in sentences(text) if not (s.section and s.section.lower().startswith(_NON_RESPONSIBILITY))]


def kra_bullets(responsibility: Sequence[Sentence]) -> list[Sentence]:
    """The responsibility bullets outside requirement sections: the JD's own KRAs (new-KRA proposals, the
    centroid)."""
    return [s for s in responsibility if s.is_bullet and not requirement_section(s.section)]


def titles_of(parsed: ParsedJD) -> list[str]:
    """The JD's title and its aliases."""
    return [t for t in [parsed.role, *parsed.role_aliases] if t]


def texts_to_embed(sents: Sequence[Sentence], titles: Sequence[str], *, max_role_sentences: int) -> list[str]:
    """Every text of a JD that extract and match embed, from its :func:`responsibility_sentences` and titles:
    what a node (or a batch) can embed ahead in one model call."""
    texts = [s.text for s in sents[:max_role_sentences]] + [s.text for s in sents if implies_skills(s)]
    return list(dict.fromkeys([*texts, *titles]))
