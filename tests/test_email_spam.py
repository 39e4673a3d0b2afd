"""A real spam filter reads every example digest: SpamAssassin, local rules only.

`spamassassin -L -t` (no network tests: no DNS blocklists, no Razor/Pyzor) scores each
message; each must stay at or below 1.0 of the 5.0 threshold. The rules that fired are
printed (`pytest -s` or `-rP`) for people tuning the templates.

One rule can fire on the papers' own words rather than on anything we write: LONGWORDS
(2.2 points), meant for "word salad", matches nine long lower-case words in a row, which
an AI summary such as "improving performance across multiple benchmarks through adaptive
reasoning allocation" has. About 2% of the recorded summaries do; a 20-paper digest
may then carry it. It is counted apart, and only when its pattern is found in a paper's
summary as the email shows it: everything else must stay within the limit.

The example digests: the bundled example (`digest.example.toml`'s three subscribers over
`examples/pages/`, ranked for real by the BM25 ranker), the 20-paper digest of recorded
API papers with every link, the same without a web app (unsubscribe by mail), and a
subscriber with neither topics nor likes. Needs Debian's `spamassassin` (installed by
`.ci/run` under CI); skipped without it elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from test_email_content import (
    DAY,
    ENV,
    NOW,
    ROOT,
    SENDER,
    example_digest,
    fixture_papers,
    report,
)

from digest.config import EXAMPLE_CONFIG, load_config
from digest.models import Digest, DigestLinks, RankedPaper, Reason, Subscriber
from digest.rank import make_ranker
from digest.render import MessageWriter
from digest.render.words import excerpt
from digest.sources import parse_saved_page

SPAMASSASSIN = shutil.which("spamassassin")
LIMIT = 1.0
MAILTO = DigestLinks(unsubscribe_mailto="mailto:digest@example.org?subject=unsubscribe")

if SPAMASSASSIN is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI needs spamassassin (apt-get install spamassassin, see .ci/run)")
    pytestmark = pytest.mark.skip(reason="needs SpamAssassin (Debian package spamassassin)")


def bundled_example_digests() -> dict[str, Digest]:
    """What the quick start sends: the example config's subscribers over its pages."""
    config = load_config(EXAMPLE_CONFIG, is_example=True)
    pages = sorted((ROOT / "examples" / "pages").glob("*.txt"))
    papers = [p for page in pages for p in parse_saved_page(page, today=DAY)]
    ranked = make_ranker("lexical").rank(papers, config.subscribers)
    return {
        f"example {sub.email}": Digest(
            sub, tuple(ranked[sub.email]), DAY, considered=len(papers), links=MAILTO
        )
        for sub in config.subscribers
        if ranked.get(sub.email)
    }


def example_digests() -> dict[str, Digest]:
    trending = Subscriber("pop@example.org", "Pop", popularity=1.0)
    popular = sorted(fixture_papers(), key=lambda p: -(p.upvotes or 0))[:10]
    top = tuple(RankedPaper(p, 1.0, (Reason("upvotes", str(p.upvotes)),)) for p in popular)
    full = example_digest()
    return {
        **bundled_example_digests(),
        "20 recorded papers, every link": full,
        "20 recorded papers, no web app": Digest(
            full.subscriber, full.papers, DAY, considered=183, links=MAILTO
        ),
        "most upvoted, no topics": Digest(trending, top, DAY, considered=183, links=MAILTO),
    }


def spam_score(message: bytes) -> tuple[float, list[str]]:
    """(score, rules that fired) as SpamAssassin's report says."""
    assert SPAMASSASSIN is not None
    result = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"], input=message, capture_output=True, check=True, timeout=120
    )
    out = result.stdout.decode("utf-8", "replace")
    status = re.search(r"^X-Spam-Status: .*?score=(-?[\d.]+)", out, re.M)
    assert status, out[:2000]
    details = out.split("Content analysis details:", 1)[-1]
    rules = re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", details, re.M)
    return float(status.group(1)), [f"{name} {points}" for points, name in rules]


# SpamAssassin's 20_body_tests.cf: LONGWORDS is two or more of these.
LONGWORDS = [
    re.compile(r"\b(?:[a-z]{8,}[\s\.]+){6}"),
    re.compile(r"\b(?:[a-z]{6,}[\s\.]+){9}"),
    re.compile(r"\b(?:[a-z]{5,}[\s\.]+){10}"),
]


def from_the_papers(rule: str, digest: Digest) -> bool:
    """Whether `rule` is one that the papers' own summaries fire."""
    if not rule.startswith("LONGWORDS "):
        return False
    texts = [excerpt(r.paper) + " " for r in digest.papers]
    return sum(any(p.search(t) for t in texts) for p in LONGWORDS) >= 2


@pytest.mark.parametrize("name", list(example_digests()))
def test_every_example_digest_scores_at_most_one_point(name: str) -> None:
    digest = example_digests()[name]
    writer = MessageWriter(ENV, SENDER)
    when = datetime(NOW.year, NOW.month, NOW.day, 6, 30, tzinfo=UTC)
    who = hashlib.sha256(digest.subscriber.email.encode()).hexdigest()[:16]
    ident = f"<digest.{DAY:%Y%m%d}.0.{who}@example.org>"  # as the outbox makes them
    score, rules = spam_score(writer.write(digest, message_id=ident, date=when))
    content = [r for r in rules if from_the_papers(r, digest)]
    ours = score - sum(float(r.split()[-1]) for r in content)
    note = f"; from the papers' own words: {', '.join(content)}" if content else ""
    report(f"SpamAssassin {name}: {score} ({', '.join(rules) or 'no rules'}){note}")
    assert ours <= LIMIT, rules
    if name.startswith("example "):
        assert score <= LIMIT, rules  # what the quick start sends: no exception at all
