"""The reference page's Rust JD (shipped as the README example) and the skills the issue says it must resolve."""

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
