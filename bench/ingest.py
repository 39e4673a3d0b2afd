"""Benchmark: parse throughput of each source parser over all recorded inputs.

For each parser: papers/s and MB/s, and the ratio of its time to a baseline measured
in the same run over the same bytes (hf-api: `json.loads` alone; hf-html: a plain
BeautifulSoup parse; text-dump: splitting into lines), so the figures compare across
machines. Peak memory of one pass is measured with tracemalloc.

    python bench/ingest.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from bs4 import BeautifulSoup

from digest.models import Paper
from digest.sources.hf_api import parse_daily_papers
from digest.sources.hf_html import parse_papers_html
from digest.sources.text_dump import parse_text_dump

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
API_DAYS = SHARED / "data" / "hf-daily-papers-api" / "days"
HTML_DAY = SHARED / "data" / "hf-papers-html" / "papers_2024-08-01.html"
PAGES = ROOT / "examples" / "pages"

Input = tuple[str, bytes]


def _inputs() -> dict[str, list[Input]]:
    return {
        "hf-api": [(str(p), p.read_bytes()) for p in sorted(API_DAYS.glob("*.json"))],
        "hf-html": [(str(HTML_DAY), HTML_DAY.read_bytes())],
        "text-dump": [(str(p), p.read_bytes()) for p in sorted(PAGES.glob("*.txt"))],
    }


def _parse_api(where: str, data: bytes) -> list[Paper]:
    return parse_daily_papers(data, where, list_date=date.fromisoformat(Path(where).stem))


PARSERS: dict[str, Callable[[str, bytes], list[Paper]]] = {
    "hf-api": _parse_api,
    "hf-html": lambda where, data: parse_papers_html(data, where),
    "hf-html-cards": lambda where, data: parse_papers_html(data, where, method="cards"),
    "text-dump": lambda where, data: parse_text_dump(data, where, year=2026),
}
BASELINES: dict[str, tuple[str, Callable[[str, bytes], object]]] = {
    "hf-api": ("json.loads", lambda _w, data: json.loads(data)),
    "hf-html": ("BeautifulSoup(lxml)", lambda _w, data: BeautifulSoup(data, "lxml")),
    "text-dump": ("decode+splitlines", lambda _w, data: data.decode("utf-8").splitlines()),
}


def _best_time(func: Callable[[str, bytes], object], inputs: Sequence[Input], repeat: int) -> float:
    """The fastest of `repeat` passes: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for where, data in inputs:
            func(where, data)
        best = min(best, time.perf_counter() - started)
    return best


def _peak_memory(func: Callable[[str, bytes], object], inputs: Sequence[Input]) -> int:
    tracemalloc.start()
    try:
        for where, data in inputs:
            func(where, data)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    inputs = _inputs()
    print(
        f"{'parser':<14}{'files':>6}{'MB':>7}{'papers':>8}{'papers/s':>11}{'MB/s':>8}"
        f"{'× baseline':>12}  {'baseline':<20}{'peak MB':>8}"
    )
    for name, parse in PARSERS.items():
        kind = name.removesuffix("-cards")
        data = inputs[kind]
        megabytes = sum(len(blob) for _, blob in data) / 1e6
        papers = sum(len(parse(where, blob)) for where, blob in data)
        seconds = _best_time(parse, data, args.repeat)
        baseline_name, baseline = BASELINES[kind]
        base_seconds = _best_time(baseline, data, args.repeat)
        peak = _peak_memory(parse, data) / 1e6
        print(
            f"{name:<14}{len(data):>6}{megabytes:>7.2f}{papers:>8}{papers / seconds:>11,.0f}"
            f"{megabytes / seconds:>8.1f}{seconds / base_seconds:>11.2f}×  {baseline_name:<20}"
            f"{peak:>8.1f}"
        )


if __name__ == "__main__":
    main()
