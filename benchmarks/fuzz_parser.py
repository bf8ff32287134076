"""Fuzz the parse step (issue 12): ``python benchmarks/fuzz_parser.py [--n 100000] [--seed 0]``.

Every input goes the way a JD does before any model sees it: ``check_input`` (bytes: PDF/DOCX sniffing, UTF-8,
limits), ``normalise_text`` (HTML → text), the sentence splitter and the deterministic parser with its non-JD
gate, on the starter catalog. Inputs are random bytes, random Unicode (controls, surrogates excluded by the
encoder, bidi marks, emoji), mutations of real JDs (the corpus and examples: cut, spliced, characters flipped,
lines repeated), HTML and Markdown fragments, documents with broken bodies, and patterns known to make regexes
backtrack (long runs of capitalised words, commas, bullets). An input may raise :class:`InputError` (a clear
refusal) or return a ParsedJD; anything else is a crash, and an input that takes more than ``--hang-s`` is a hang.
Prints one line per 10,000 inputs and a summary; exit 1 on any crash or hang. Outside CI: ~3-4 min on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [p.read_bytes() for p in sorted((ROOT / "tests" / "corpus").iterdir()) if p.is_file() and p.suffix != ".py"]
SEEDS += [p.read_bytes() for p in sorted((ROOT / "examples").glob("*.txt"))]
TEXT_SEEDS = [s.decode("utf-8", "ignore") for s in SEEDS if s.strip()]


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def random_unicode(rng: random.Random, n: int) -> str:
    pools = [
        (0x20, 0x7E),
        (0x00, 0x1F),
        (0xA0, 0x2FF),
        (0x400, 0x4FF),
        (0x4E00, 0x4FFF),
        (0x200B, 0x202E),
        (0x1F300, 0x1F6FF),
        (0xE000, 0xE0FF),
    ]
    out = []
    for _ in range(n):
        lo, hi = rng.choice(pools)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def mutate(rng: random.Random, text: str) -> str:
    ops = rng.randint(1, 6)
    for _ in range(ops):
        op = rng.randrange(7)
        if not text:
            text = random_unicode(rng, 20)
        i = rng.randrange(len(text) + 1)
        if op == 0:  # cut
            text = text[:i]
        elif op == 1:  # splice another seed
            other = rng.choice(TEXT_SEEDS)
            text = text[:i] + other[rng.randrange(len(other) + 1) :]
        elif op == 2:  # flip characters
            chars = list(text)
            for _ in range(rng.randint(1, 20)):
                if chars:
                    chars[rng.randrange(len(chars))] = random_unicode(rng, 1)
            text = "".join(chars)
        elif op == 3:  # repeat a line
            lines = text.splitlines() or [text]
            line = rng.choice(lines)
            text = "\n".join(lines + [line] * rng.randint(2, 60))
        elif op == 4:  # wrap in markup
            tag = rng.choice(["p", "li", "div", "script", "b", "h2", "td"])
            text = f"<{tag}>{text[:i]}</{tag}>{text[i:]}" if rng.random() < 0.8 else f"<{tag}>{text}"
        elif op == 5:  # markdown
            text = text[:i] + rng.choice(["\n## ", "\n* ", "**", "`", "\n1. ", "[x](http://a)", "\n---\n"]) + text[i:]
        else:  # insert unicode noise
            text = text[:i] + random_unicode(rng, rng.randint(1, 40)) + text[i:]
    return text


def backtracking_probe(rng: random.Random) -> str:
    n = rng.randint(10, 400)
    word = rng.choice(["A", "Ab", "ABC", "Python", "X-Y", "C++", "a"])
    sep = rng.choice([" ", ", ", "/", " and ", "-", "·", "\n- ", "\t"])
    tail = rng.choice([", xyz", ":", "!", "", " (", ")" * 50, "\n"])
    return "Requirements:\n" + sep.join([word] * n) + tail


def make_input(rng: random.Random) -> str | bytes:
    kind = rng.randrange(10)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 400))
    if kind == 1:
        seed = rng.choice(SEEDS)
        i = rng.randrange(len(seed) + 1)
        return seed[:i] + rng.randbytes(rng.randint(0, 50)) + seed[i:]
    if kind == 2:
        return random_unicode(rng, rng.randint(0, 600))
    if kind == 3:
        return backtracking_probe(rng)
    if kind == 4:
        return rng.choice([b"%PDF-1.4\n", b"PK\x03\x04"]) + rng.randbytes(rng.randint(0, 300))
    return mutate(rng, rng.choice(TEXT_SEEDS))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hang-s", type=float, default=5.0)
    args = ap.parse_args()

    from jdgraph.catalog.registry import open_catalog
    from jdgraph.errors import InputError
    from jdgraph.graph.parse import deterministic_parse
    from jdgraph.graph.text import check_input, normalise_text, sentences

    catalog = open_catalog("starter")
    rng = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    crashes: list[tuple[str, str]] = []
    slowest = (0.0, "")
    signal.signal(signal.SIGALRM, _alarm)
    t_start = time.perf_counter()
    for i in range(args.n):
        data = make_input(rng)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.hang_s)
        try:
            text = normalise_text(check_input(data))
            sentences(text)
            parsed = deterministic_parse(text, title=None, company=None, catalog=catalog)
            outcomes[f"parsed: {parsed.jd_type}"] += 1
        except InputError:
            outcomes["refused (InputError)"] += 1
        except Hang:
            outcomes["HANG"] += 1
            crashes.append(("hang", repr(data[:300])))
        except Exception:  # any other exception is what a fuzz run looks for
            outcomes["CRASH"] += 1
            crashes.append((traceback.format_exc(limit=3), repr(data[:300])))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        took = time.perf_counter() - t0
        if took > slowest[0]:
            slowest = (took, repr(data[:120]))
        if (i + 1) % 10_000 == 0:
            print(f"{i + 1:>7} inputs  {time.perf_counter() - t_start:6.0f} s  {dict(outcomes)}", flush=True)
    total = time.perf_counter() - t_start
    print(f"\nfuzzed the parse step with {args.n:,} inputs (seed {args.seed}) in {total:.0f} s")
    for k, v in sorted(outcomes.items()):
        print(f"  {k:<24} {v:>8,}")
    print(f"  slowest input: {slowest[0] * 1000:.0f} ms  {slowest[1]}")
    for tb, data in crashes[:10]:
        print(f"\n--- {data}\n{tb}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
