"""Hard filters applied before ranking: a subscriber's `categories` and `exclude_categories`.

A paper passes `categories` when it carries at least one of them, and is dropped when it
carries any of `exclude_categories`. Matching ignores case, and a whole archive matches
its categories (`cs` matches `cs.CL`, `astro-ph` matches `astro-ph.GA`). Papers from
Hugging Face's list carry no arXiv category unless an arXiv feed also read them, so the
name `huggingface` stands for that list: `categories = ["huggingface"]` follows Hugging
Face's list only, `["huggingface", "cs.CL"]` both, `["cs.CL"]` arXiv's cs.CL only.

Pure: papers and eligibility in, eligibility out; the sets given are never changed, and a
subscriber without filters keeps the very set given (the store shares one set between
subscribers with the same starting point). Subscribers with the same filters share one
pass over the papers, and the same filters on the same set share the result, so
thousands of subscribers cost at most a set intersection each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from digest.models import Paper, Subscriber
from digest.sources.arxiv import HUGGING_FACE


def filter_by_categories(
    subscribers: Sequence[Subscriber],
    papers: Sequence[Paper],
    eligible: Mapping[str, set[str]],
) -> dict[str, set[str]]:
    """Each subscriber's eligible paper keys (email -> keys) that pass their category filters."""
    labels: dict[str, frozenset[str]] | None = None
    Filter = tuple[frozenset[str], frozenset[str]]
    passing: dict[Filter, set[str]] = {}
    narrowed: dict[tuple[int, Filter], set[str]] = {}
    result = dict(eligible)
    for sub in subscribers:
        keys = result.get(sub.email)
        if keys is None or not (sub.categories or sub.exclude_categories):
            continue
        if labels is None:
            labels = {paper.key: paper_labels(paper) for paper in papers}
        wanted = frozenset(c.casefold() for c in sub.categories)
        unwanted = frozenset(c.casefold() for c in sub.exclude_categories)
        allowed = passing.get((wanted, unwanted))
        if allowed is None:
            allowed = {
                key
                for key, tags in labels.items()
                if (not wanted or tags & wanted) and not tags & unwanted
            }
            passing[(wanted, unwanted)] = allowed
        shared = (id(keys), (wanted, unwanted))
        if shared not in narrowed:
            narrowed[shared] = keys & allowed
        result[sub.email] = narrowed[shared]
    return result


def matched_category(paper: Paper, wanted: Sequence[str]) -> str | None:
    """The paper's first arXiv category that an entry of `wanted` names (the category, or
    its archive): what a why-line can say it was sent for."""
    names = {w.casefold() for w in wanted}
    for category in paper.categories:
        folded = category.casefold()
        if folded in names or folded.partition(".")[0] in names:
            return category
    return None


def paper_labels(paper: Paper) -> frozenset[str]:
    """What a filter entry can name on this paper: each category and its archive, casefolded,
    and `huggingface` when the paper is on Hugging Face's list."""
    tags: set[str] = set()
    for category in paper.categories:
        folded = category.casefold()
        tags.add(folded)
        tags.add(folded.partition(".")[0])
    if on_hugging_face(paper):
        tags.add(HUGGING_FACE)
    return frozenset(tags)


def on_hugging_face(paper: Paper) -> bool:
    """Listed by Hugging Face: it has their list data (a list date, upvotes), or it came only
    from the Hugging Face sources (no arXiv category, no arXiv announcement)."""
    if paper.list_date is not None or paper.upvotes is not None:
        return True
    return not paper.categories and paper.announce is None
