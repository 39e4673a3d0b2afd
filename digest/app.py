"""Assemble the parts named by settings and config: store, sources, ranker, mailer.

The CLI and the scheduler build an `App` and call the pipeline with it; nothing else
decides which implementation of a part is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path

import jinja2

from digest.config import Config, Settings, find_config, load_config
from digest.mailer import Mailer, make_mailer
from digest.rank import Ranker, make_ranker
from digest.render import make_environment
from digest.sources import FetchContext, HttpClient, Progress, Source, build_source
from digest.store import Store


@dataclass
class App:
    settings: Settings
    config: Config
    store: Store
    sources: list[Source]
    mailer: Mailer
    templates: jinja2.Environment
    http: HttpClient

    @cached_property
    def ranker(self) -> Ranker:
        """Built on first use: loading a model is wasted work for `digest fetch`."""
        return make_ranker(self.settings.ranker, cache=self.store)

    def fetch_context(
        self, today: date, now: datetime | None = None, progress: Progress | None = None
    ) -> FetchContext:
        return FetchContext(
            today=today, http=self.http, state=self.store, progress=progress, now=now
        )


def load_app_config(settings: Settings, config_path: Path | None) -> Config:
    path, is_example = find_config(config_path, settings)
    return load_config(path, is_example=is_example)


@contextmanager
def open_app(settings: Settings, config: Config) -> Iterator[App]:
    sources = [
        build_source(spec, config_dir=config.directory, where=f"{config.path}: sources[{i}]")
        for i, spec in enumerate(config.sources, start=1)
    ]
    mailer = make_mailer(settings)
    templates = make_environment(settings.templates_dir, postal_address=settings.postal_address)
    store = Store.open(settings.database_url)
    try:
        with HttpClient(
            timeout=settings.http_timeout,
            retries=settings.http_retries,
            min_delay=settings.http_min_delay,
        ) as http:
            yield App(settings, config, store, sources, mailer, templates, http)
    finally:
        store.close()


def local_now(now: datetime | None = None) -> datetime:
    """The current time with the machine's time zone."""
    return (now or datetime.now()).astimezone()
