"""Bytes from the web or from files, politely and with a clear error naming the URL or path.

`HttpClient` wraps one shared `httpx.Client`: timeouts, retries with exponential
backoff and jitter on connection errors, 429 (honouring Retry-After) and 5xx,
conditional GET from remembered validators, a minimum delay between requests to the
same host, a size cap, and a project User-Agent. Sleep, clocks and randomness are
injectable, so tests run fast against a real server and assert on the waits asked for.

`list_files` and `read_file` do the same for saved pages on disk.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import random
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from digest import __version__
from digest.errors import SourceError
from digest.models import FileFingerprint, Paper, UrlMemo, Validators
from digest.sources.base import FetchContext, PageResult, PartialPageError

log = logging.getLogger(__name__)

USER_AGENT = f"paper-digest/{__version__} (+https://github.com/paper-digest)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_BYTES = 32 * 1024 * 1024  # no real page is near this; a runaway body stops here
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Fetched:
    """A 200 response body, or a 304 (`not_modified`, empty body)."""

    url: str
    content: bytes
    validators: Validators
    not_modified: bool = False


class HttpClient:
    """The one HTTP client of a run. Use as a context manager; `get` raises only SourceError.

    Usage: `with HttpClient(retries=2, min_delay=1.0) as http: http.get(url)`.
    """

    def __init__(
        self,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 1.0,  # first retry waits about this long, then doubles
        max_backoff: float = 60.0,
        max_retry_after: float = 300.0,  # a longer Retry-After fails the page instead
        min_delay: float = 1.0,  # between two requests to the same host
        max_bytes: int = MAX_BYTES,
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,  # for the polite delay
        wall_clock: Callable[[], float] = time.time,  # for Retry-After given as a date
        jitter: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.min_delay = min_delay
        self.max_bytes = max_bytes
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._jitter = jitter
        self._last_request: dict[str, float] = {}
        self._client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": user_agent},
            follow_redirects=True,
            max_redirects=5,
            transport=transport,
        )
        self.requests = 0  # every attempt, for tests and the bench

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, *, validators: Validators | None = None) -> Fetched:
        """GET with retries; a 304 to our validators comes back as `not_modified`."""
        headers = {}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        attempt = 0
        while True:
            self._wait_for_host(url)
            try:
                status, response_headers, body = self._once(url, headers)
            except httpx.UnsupportedProtocol as exc:
                raise SourceError(url, f"unsupported URL ({exc})") from None
            except httpx.TimeoutException:
                problem = f"timed out after {attempt + 1} attempt(s)"
                retry_in: float | None = self._backoff(attempt)
            except httpx.TransportError as exc:
                problem = _transport_problem(exc)
                retry_in = self._backoff(attempt)
            except httpx.HTTPError as exc:  # redirects, decoding: retrying will not help
                raise SourceError(url, f"{type(exc).__name__} ({exc})") from None
            else:
                if status == 304 and validators is not None:
                    return Fetched(url, b"", validators, not_modified=True)
                if 200 <= status < 300:
                    return Fetched(url, body, _validators(response_headers))
                problem = f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()
                if status not in RETRY_STATUSES:
                    raise SourceError(url, problem)
                retry_in = self._backoff(attempt)
                if status == 429 or status == 503:
                    retry_in = _retry_after(response_headers, retry_in, self._wall_clock())
                if retry_in is not None and retry_in > self.max_retry_after:
                    raise SourceError(url, f"{problem}: server asks to wait {retry_in:.0f}s")
            if attempt >= self.retries:
                raise SourceError(url, f"{problem} (gave up after {attempt + 1} attempts)")
            attempt += 1
            log.info("event=http_retry url=%s problem=%s wait=%.2f", url, problem, retry_in or 0)
            self._sleep(retry_in or 0.0)

    def _once(self, url: str, headers: dict[str, str]) -> tuple[int, httpx.Headers, bytes]:
        self.requests += 1
        try:
            request = self._client.build_request("GET", url, headers=headers)
        except httpx.InvalidURL as exc:
            raise SourceError(url, f"invalid URL ({exc})") from None
        response = self._client.send(request, stream=True)
        try:
            if not (200 <= response.status_code < 300):
                return response.status_code, response.headers, b""
            body = self._read_capped(url, response)
        finally:
            response.close()
        expected = response.headers.get("Content-Length")
        if (
            expected is not None
            and "Content-Encoding" not in response.headers
            and expected.isdigit()
            and int(expected) != len(body)
        ):
            raise httpx.RemoteProtocolError(f"got {len(body)} of {expected} bytes")
        return response.status_code, response.headers, body

    def _read_capped(self, url: str, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise SourceError(url, f"response larger than {self.max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _wait_for_host(self, url: str) -> None:
        host = urlsplit(url).netloc
        last = self._last_request.get(host)
        now = self._clock()
        if last is not None and (wait := last + self.min_delay - now) > 0:
            self._sleep(wait)
            now += wait
        self._last_request[host] = now

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter in its upper half, capped."""
        base = min(self.max_backoff, self.backoff * 2.0**attempt)
        return base * (0.5 + 0.5 * self._jitter())


def _transport_problem(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"response cut off ({exc})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})"
    return f"{type(exc).__name__} ({exc})"


def _validators(headers: httpx.Headers) -> Validators:
    return Validators(headers.get("ETag"), headers.get("Last-Modified"))


def _retry_after(headers: httpx.Headers, default: float, now: float) -> float:
    """Retry-After as seconds or as an HTTP date; the backoff if absent or unreadable."""
    value = headers.get("Retry-After")
    if value is None:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    if when.tzinfo is None:
        return default
    return max(0.0, when.timestamp() - now)


# --- files -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileRead:
    """A file's bytes and the fingerprint to remember once they are handled."""

    path: Path
    content: bytes
    fingerprint: FileFingerprint


def list_files(spec: Path, suffixes: tuple[str, ...]) -> tuple[list[Path], bool]:
    """The files named by a file, folder or glob, sorted; and whether it was a collection.

    A folder gives its files with one of `suffixes` (so a README beside the pages is
    not read as a page); a glob gives whatever it matches; a missing plain path is an
    error for the caller.
    """
    text = str(spec)
    if any(char in text for char in "*?["):
        matches = sorted(Path(match) for match in glob.glob(text, recursive=True))
        return [path for path in matches if path.is_file()], True
    if spec.is_dir():
        files = sorted(
            path
            for path in spec.iterdir()
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in suffixes
        )
        return files, True
    return [spec], False


def read_file(path: Path, max_bytes: int = MAX_BYTES) -> FileRead:
    """Read a regular file, refusing huge ones; raises SourceError naming it."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(str(path), "not a regular file")
        if info.st_size > max_bytes:
            raise SourceError(str(path), f"file larger than {max_bytes} bytes")
        content = path.read_bytes()
    except OSError as exc:
        raise SourceError(str(path), f"cannot read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(content).hexdigest()
    fingerprint = FileFingerprint(str(path), len(content), info.st_mtime_ns, digest)
    return FileRead(path, content, fingerprint)


def fetch_page(ctx: FetchContext, url: str, parse: Callable[[bytes], list[Paper]]) -> PageResult:
    """GET one URL conditionally and parse it.

    The page's memo is the URL's validators after a 200 whose body parsed (fully or
    partly) and that had an ETag or Last-Modified; a failure, a 304 and a body that does
    not parse carry none, so the next run asks again as it would have.
    """
    try:
        fetched = ctx.http.get(url, validators=ctx.state.http_validators(url))
    except SourceError as exc:
        return PageResult(url, error=exc)
    if fetched.not_modified:
        return PageResult(url, not_modified=True)
    validators = fetched.validators
    memo = UrlMemo(url, validators) if validators.etag or validators.last_modified else None
    try:
        return PageResult(url, tuple(parse(fetched.content)), memo=memo)
    except PartialPageError as exc:
        return PageResult(url, exc.papers, exc, memo=memo)
    except SourceError as exc:
        return PageResult(url, error=exc)
