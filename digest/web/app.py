"""The Starlette app of `digest serve`: routes, views, and the guard that adds the security
headers and counts requests per client address (see the package docstring)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from digest.errors import StoreError
from digest.models import Feedback
from digest.store import SentPaper
from digest.tokens import ExpiredTokenError, Kind, Token, TokenError, Tokens
from digest.web.feed import MEDIA_TYPE, atom_feed
from digest.web.limits import RateLimiter
from digest.web.pages import CONTENT_SECURITY_POLICY, render

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
FEED_MESSAGES = 30  # the feed holds the papers of this many recent digests
BODY_LIMIT = 16_384  # bytes of a POST body read (one-click sends 26)


class SubscriberStore(Protocol):
    """What the web app needs of the store."""

    def unsubscribe(self, email: str, how: str, now: datetime) -> bool: ...

    def record_feedback(
        self, email: str, paper_key: str, verdict: str, issue_date: date | None, now: datetime
    ) -> Feedback: ...

    def undo_feedback(self, email: str, paper_key: str, verdict: str) -> bool: ...

    def sent_papers(self, email: str, messages: int = FEED_MESSAGES) -> list[SentPaper]: ...

    def ping(self) -> None: ...


def create_app(
    store: SubscriberStore,
    tokens: Tokens,
    *,
    public_url: str | None = None,
    rate_limit: int = 30,
    clock: Clock | None = None,
) -> ASGIApp:
    """The ASGI app. `public_url` (DIGEST_PUBLIC_URL) names the feed's own address;
    `rate_limit` is requests a minute per client address; `clock` gives the time (UTC)."""
    views = _Views(store, tokens, public_url.rstrip("/") if public_url else None, clock)
    app = Starlette(
        routes=[
            Route("/healthz", views.healthz, methods=["GET"]),
            Route("/u/{token}", views.confirm, methods=["GET"]),
            Route("/u/{token}", views.unsubscribe, methods=["POST"]),
            Route("/f/{token}/undo", views.undo, methods=["GET"]),
            Route("/f/{token}", views.feedback, methods=["GET"]),
            Route("/feed/{token}.atom", views.feed, methods=["GET"]),
        ],
        exception_handlers={
            ExpiredTokenError: views.expired,
            TokenError: views.bad_link,
            StoreError: views.unavailable,
            HTTPException: views.http_error,
        },
    )
    return _Guard(app, RateLimiter(rate_limit), tokens, views.now)


class _Views:
    def __init__(
        self, store: SubscriberStore, tokens: Tokens, public_url: str | None, clock: Clock | None
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.public_url = public_url
        self.clock = clock

    def now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(UTC)

    def read(self, request: Request, kind: Kind) -> Token:
        return self.tokens.read(request.path_params["token"], kind, today=self.now().date())

    # -- unsubscribe ----------------------------------------------------------------------

    def confirm(self, request: Request) -> Response:
        token = self.read(request, "unsubscribe")
        return _page("confirm.html", "Unsubscribe?", email=token.email)

    async def unsubscribe(self, request: Request) -> Response:
        body = await _head_of_body(request)
        token = self.read(request, "unsubscribe")
        how = "one-click" if b"One-Click" in body else "web page"
        fresh = await run_in_threadpool(self.store.unsubscribe, token.email, how, self.now())
        log.info("event=unsubscribed subscriber=%s how=%s new=%s", token.email, how, fresh)
        return _page("unsubscribed.html", "You are unsubscribed", email=token.email)

    # -- feedback -------------------------------------------------------------------------

    def feedback(self, request: Request) -> Response:
        token = self.read(request, "feedback")
        assert token.verdict is not None
        title = ""
        if request.method == "GET":  # not HEAD: link checkers probe with it
            saved = self.store.record_feedback(
                token.email, token.paper_key, token.verdict, token.issue_date, self.now()
            )
            title = saved.title
            log.info(
                "event=feedback subscriber=%s paper=%s verdict=%s",
                token.email,
                token.paper_key,
                token.verdict,
            )
        heading = "More like this" if token.verdict == "more" else "Less like this"
        undo = f"{request.path_params['token']}/undo"
        return _page("feedback.html", heading, verdict=token.verdict, paper_title=title, undo=undo)

    def undo(self, request: Request) -> Response:
        token = self.read(request, "feedback")
        assert token.verdict is not None
        if request.method == "GET":
            self.store.undo_feedback(token.email, token.paper_key, token.verdict)
            log.info("event=feedback_undone subscriber=%s paper=%s", token.email, token.paper_key)
        redo = f"../{request.path_params['token']}"
        return _page("undone.html", "Undone", paper_title="", redo=redo)

    # -- feed -----------------------------------------------------------------------------

    def feed(self, request: Request) -> Response:
        token = self.read(request, "feed")
        sent = self.store.sent_papers(token.email, FEED_MESSAGES)
        path = request.url.path
        self_url = f"{self.public_url}{path}" if self.public_url else str(request.url)
        body = atom_feed(token.email, sent, self_url)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"etag": etag, "cache-control": "private, max-age=600"}
        if etag in _etags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=MEDIA_TYPE, headers=headers)

    # -- health and errors ----------------------------------------------------------------

    def healthz(self, request: Request) -> Response:
        self.store.ping()
        return JSONResponse({"status": "ok"})

    def bad_link(self, request: Request, exc: Exception) -> Response:
        log.info("event=bad_link path=%s", request.url.path.split("/")[1])
        return _page(
            "error.html",
            "This link does not work",
            status=400,
            message="It is not a link we sent, or part of it is missing.",
            hint="Mail programs sometimes break long links across lines: "
            "copy the whole link into the address bar.",
        )

    def expired(self, request: Request, exc: Exception) -> Response:
        return _page("error.html", "This link has expired", status=410, message=str(exc), hint="")

    def unavailable(self, request: Request, exc: Exception) -> Response:
        log.warning("event=web_store_error error=%s", exc)
        if request.url.path == "/healthz":
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return _page(
            "error.html",
            "Please try again later",
            status=503,
            message="Something went wrong on our side; nothing was changed.",
            hint="",
            headers={"retry-after": "60"},
        )

    def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            return _page(
                "error.html",
                "Not allowed",
                status=405,
                message="This address does not take that kind of request.",
                hint="",
                headers={"allow": allowed} if allowed else None,
            )
        return _page(
            "error.html",
            "Nothing here",
            status=exc.status_code,
            message="There is no page at this address.",
            hint="",
        )


def _page(
    name: str,
    title: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    return HTMLResponse(render(name, title, **values), status_code=status, headers=headers)


async def _head_of_body(request: Request) -> bytes:
    """The first BODY_LIMIT bytes of the request body; the rest is not read."""
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) >= BODY_LIMIT:
            break
    return data[:BODY_LIMIT]


def _etags(header: str) -> Sequence[str]:
    return [part.strip().removeprefix("W/") for part in header.split(",")]


class _Guard:
    """Security headers on every response; a request budget per client address."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, tokens: Tokens, clock: Clock) -> None:
        self.app = app
        self.limiter = limiter
        self.tokens = tokens
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = dict(SECURITY_HEADERS)
                extra.setdefault("cache-control", "no-store")
                message["headers"] = list(message.get("headers", [])) + [
                    (k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present
                ]
            await send(message)

        if self._limited(scope):
            client = scope.get("client") or ("unknown", 0)
            wait = self.limiter.take(str(client[0]), self.clock().timestamp())
            if wait > 0:
                log.info("event=rate_limited client=%s", client[0])
                response = _page(
                    "error.html",
                    "Too many requests",
                    status=429,
                    message="Please wait a minute and try again.",
                    hint="",
                    headers={"retry-after": str(max(1, round(wait)))},
                )
                await response(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)

    def _limited(self, scope: Scope) -> bool:
        """Everything counts but health checks and one-click unsubscribes with a valid
        token: a mail provider posts those from a few addresses for all its users."""
        path = str(scope.get("path", ""))
        if path == "/healthz":
            return False
        if scope.get("method") == "POST" and path.startswith("/u/"):
            try:
                self.tokens.read(path[3:], "unsubscribe", today=self.clock().date())
            except TokenError:
                return True
            return False
        return True
