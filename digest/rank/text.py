"""Text normalisation shared by the rankers: tokens, light stemming, phrases, names, likes.

Kept dependency-free and deterministic so that the lexical ranker, exclusion and the
"why" lines all agree on what "matches" means.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence

from digest.models import Paper, normalise_arxiv_id, normalise_title

_WORD = re.compile(r"[a-z0-9]+(?:[+#]+)?")

# Words that carry no topic on their own; kept short on purpose: a long list drops
# meaningful words such as "learning" or "model" that phrases need.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "here",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "more",
        "most",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "same",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "you",
        "your",
        "via",
        "using",
        "based",
        "toward",
        "towards",
        "new",
        "novel",
        "paper",
        "propose",
        "proposed",
        "show",
        "shows",
    ]
)


def fold(text: str) -> str:
    """Case- and accent-insensitive form, so 'Réseaux' and 'reseaux' match."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """A deliberately light stemmer: plurals and a few suffixes, never below 4 letters.

    Heavy stemming (Porter) merges unrelated technical words ("generalization" and
    "general"); plural folding gets most of the recall at none of that risk.
    """
    if len(word) <= 4 or word.isdigit():
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch")):
        if word.endswith(suffix):
            return word[: -len(suffix)] + repl
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "ys")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Folded, stemmed tokens in order, stopwords included (phrases need positions)."""
    return [stem(w) for w in _WORD.findall(fold(text))]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS]


def terms(text: str) -> list[str]:
    """Unigrams plus adjacent-content-word bigrams ("reinforcement learning").

    Bigrams make BM25 phrase-aware without positional indexes: a phrase query matches the
    bigram only where the words are adjacent (stopwords skipped, so "computation and
    language" still yields the bigram "computation language").
    """
    toks = content_words(text)
    return toks + [f"{a} {b}" for a, b in itertools.pairwise(toks)]


def paper_fields(paper: Paper) -> tuple[str, str, str]:
    """Title, abstract and keyword text: the fields every ranker reads."""
    return paper.title, paper.abstract, " ; ".join(paper.ai_keywords)


def paper_text(paper: Paper) -> str:
    title, abstract, keywords = paper_fields(paper)
    return " \n ".join(part for part in (title, keywords, abstract) if part)


def contains_phrase(haystack: Sequence[str], phrase: Sequence[str]) -> bool:
    """Whether `phrase` occurs contiguously in `haystack` (both tokenised by `words`)."""
    n = len(phrase)
    if n == 0:
        return False
    first = phrase[0]
    return any(
        haystack[i] == first and list(haystack[i : i + n]) == list(phrase)
        for i in range(len(haystack) - n + 1)
    )


def matches_phrase(paper_words: Sequence[str], phrase: str) -> bool:
    return contains_phrase(paper_words, words(phrase))


def normalise_name(name: str) -> str:
    """'Kaiming He', 'HE, Kaiming' and 'Kaiming  He' compare equal."""
    name = fold(name)
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    return " ".join(re.findall(r"[a-z0-9]+", name))


def name_matches(followed: str, author: str) -> bool:
    """Full-name match, tolerant of middle names and initials ("Y. LeCun" ~ "Yann LeCun")."""
    a, b = normalise_name(followed).split(), normalise_name(author).split()
    if not a or not b:
        return False
    if a == b:
        return True
    if a[-1] != b[-1]:
        return False
    # Same last name: the first names must agree, or one be the other's initial.
    fa, fb = a[0], b[0]
    return fa == fb or (len(fa) == 1 and fb.startswith(fa)) or (len(fb) == 1 and fa.startswith(fb))


class LikeResolver:
    """Finds the papers a subscriber's `like` entries name, by arXiv id or by title."""

    def __init__(self, papers: Iterable[Paper]) -> None:
        self._by_id: dict[str, Paper] = {}
        self._by_title: dict[str, Paper] = {}
        for paper in sorted(papers, key=lambda p: p.key):
            if paper.arxiv_id:
                self._by_id.setdefault(paper.arxiv_id.lower(), paper)
            self._by_title.setdefault(paper.title_key, paper)

    def resolve(self, entry: str) -> Paper | None:
        ident = normalise_arxiv_id(entry)
        if ident and ident.lower() in self._by_id:
            return self._by_id[ident.lower()]
        return self._by_title.get(normalise_title(entry))


def upvotes_of(paper: Paper) -> int:
    return paper.upvotes or 0
