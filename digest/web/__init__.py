"""`digest serve`: the subscriber's side of the service, reached from the links in an email.

    GET  /u/<token>          "Stop sending the digest to you@...?" and a button
    POST /u/<token>          unsubscribe at once: the button, and RFC 8058 one-click
                             (`List-Unsubscribe=One-Click`, as Gmail and Yahoo send it)
    GET  /f/<token>          record "more/less like this" for a paper; a thank-you page
    GET  /f/<token>/undo     take it back
    GET  /feed/<token>.atom  the subscriber's own digests as an Atom feed
    GET  /healthz            200 when the database answers, for monitors

Starlette under uvicorn. The app is a few routes over the store: Starlette is the smallest
ASGI toolkit with a real router, typed, and runs plain `def` endpoints in a thread pool,
which suits the synchronous store; uvicorn is a production server (graceful SIGTERM,
X-Forwarded-For from trusted proxies only) that the tests start in a thread on 127.0.0.1.
Flask would need a second server (gunicorn, waitress) to deploy; FastAPI adds pydantic
schemas and OpenAPI for six HTML pages.

The token is the only authority (see `digest.tokens`): no session, no cookie. A page says
the same whatever the address's state, and a bad token gets the same 400 page whatever is
wrong with it, so nothing tells whether an address is subscribed. Every response carries
the security headers; every page is escaped (`pages`); each client address is
rate-limited, except a one-click unsubscribe with a valid token, which is always honoured.
"""

from __future__ import annotations

from digest.web.app import SECURITY_HEADERS, SubscriberStore, create_app

__all__ = ["SECURITY_HEADERS", "SubscriberStore", "create_app"]
