"""Shared test helpers for the sources: where the recorded data lives, and a real HTTP server."""

from __future__ import annotations

from pathlib import Path

# CI clones the repository with the shared data folder beside it (../shared).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAGES = SHARED / "pages"
API_DAYS = SHARED / "data" / "hf-daily-papers-api" / "days"
API_MALFORMED = SHARED / "data" / "hf-daily-papers-api" / "malformed"
HTML_DAY = SHARED / "data" / "hf-papers-html" / "papers_2024-08-01.html"
