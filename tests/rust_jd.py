"""JDs several tests share: the reference page's Rust JD (the README example) with the skills it must resolve, a
shared-title JD that needs adjudication, and a JD for a role no starter role fits."""

from __future__ import annotations

from pathlib import Path

RUST_JD = (Path(__file__).resolve().parents[1] / "examples" / "rust-developer.txt").read_text()
RUST_SKILLS = {
    "rust",
    "unit-testing",
    "integration-testing",
    "property-based-testing",
    "concurrency",
    "asynchronous-programming",
    "multithreading",
}

# "Software Engineer" is an alias of several starter roles: the run goes to adjudication.
SHARED_TITLE_JD = """Software Engineer
We are looking for a Software Engineer to join our team.
Responsibilities:
- Write clean, well-tested code and take part in code reviews.
Requirements:
- 3+ years of experience with Git.
"""

BEEKEEPER_JD = """Beekeeper
We are hiring a seasonal beekeeper for our apiary in Otago, New Zealand. Full-time, on-site.
Responsibilities:
- Inspect hives weekly for queen health, brood patterns and varroa mites.
- Harvest, extract and jar honey and beeswax.
- Move hives between orchards for pollination contracts.
Requirements:
- One season of commercial apiary experience and no allergy to bee stings.
"""
