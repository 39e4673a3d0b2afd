"""digest serve: the web app behind the links in the emails (see digest.web)."""

from __future__ import annotations

from typing import Any

import click
import uvicorn

from digest.config import Settings, load_settings
from digest.errors import ConfigError
from digest.store import Store
from digest.tokens import Tokens
from digest.web import create_app


def load_tokens(settings: Settings, needed_by: str) -> Tokens:
    """The link signer of this installation, or a ConfigError saying what to set."""
    if settings.secret_key is None:
        raise ConfigError(
            f"environment: DIGEST_SECRET_KEY: {needed_by} needs the key that signs the links "
            "in the emails (a long random string, e.g. from `openssl rand -hex 32`)"
        )
    return Tokens.from_secret(
        settings.secret_key.get_secret_value(), feedback_days=settings.feedback_days
    )


def server_config(app: Any, host: str, port: int, proxies: str) -> uvicorn.Config:
    """How uvicorn runs the app: our logging, no access log (paths hold tokens), no
    Server header; X-Forwarded-For and -Proto believed from `proxies` only."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=proxies,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off",
    )


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on [default: DIGEST_SERVE_HOST].")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on [default: DIGEST_SERVE_PORT].",
)
def serve(host: str | None, port: int | None) -> None:
    """Serve the unsubscribe, feedback and feed links of the emails until stopped."""
    settings = load_settings()
    tokens = load_tokens(settings, "digest serve")
    host = host or settings.serve_host
    port = settings.serve_port if port is None else port
    store = Store.open(settings.database_url)
    try:
        app = create_app(
            store,
            tokens,
            public_url=settings.public_url,
            rate_limit=settings.serve_rate_limit,
        )
        server = uvicorn.Server(server_config(app, host, port, settings.serve_proxies))
        public = settings.public_url or "not set: emails carry no web links (DIGEST_PUBLIC_URL)"
        click.echo(f"serving on http://{host}:{port}; public address: {public}", err=True)
        server.run()
    finally:
        store.close()
