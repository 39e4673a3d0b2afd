"""The HTML email in a real browser: headless Chromium at 375 and 1024 px, light and dark.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
messages separated by NUL on file descriptors 3 and 4), so no web-socket library is
needed. Device emulation sets the width, since a headless window cannot be narrower than
500 px, and `prefers-color-scheme` is emulated for dark mode. For each of the four
views: nothing may stick out horizontally, and every visible piece of text must reach
WCAG AA contrast (4.5:1) against its background. The PNGs go to a temporary folder, or
to `docs/screenshots/` with `DIGEST_WRITE_SCREENSHOTS=1` (how the README's are made).

Needs Debian's `chromium` (installed by `.ci/run` under CI); skipped without it
elsewhere.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chromium import CHROMIUM, HEADLESS_FLAGS
from test_email_content import ROOT, example_digest, report

from digest.render import make_environment, render_message

SHOTS = ROOT / "docs" / "screenshots"
VIEWS = [(375, "light"), (375, "dark"), (1024, "light"), (1024, "dark")]

if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI needs chromium (apt-get install chromium, see .ci/run)")
    pytestmark = pytest.mark.skip(reason="needs headless Chromium (Debian package chromium)")


class Browser:
    """Headless Chromium over the DevTools pipe; one page (target) at a time."""

    def __init__(self) -> None:
        assert CHROMIUM is not None
        self.profile = tempfile.mkdtemp(prefix="digest-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Out of the way of 3 and 4 first, so that the dup2s below cannot clobber each other.
        high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        to_browser_r, from_browser_w = high_r, high_w

        def fds() -> None:  # the child reads commands on fd 3 and answers on fd 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [
                CHROMIUM,
                *HEADLESS_FLAGS,
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--mute-audio",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            preexec_fn=fds,
            close_fds=False,  # Python's own descriptors are not inheritable (PEP 446)
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next = 0
        self.session: str | None = None
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.call("Browser.close", session=False)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method: str, *, session: bool = True, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    del self.events[: i + 1]
                    return
            self.events.append(self._read())

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", session=False, url="about:blank")
        attached = self.call(
            "Target.attachToTarget", session=False, targetId=target["targetId"], flatten=True
        )
        self.session = attached["sessionId"]
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def view(self, width: int, scheme: str) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=800,
            deviceScaleFactor=1,
            mobile=width < 500,
        )
        self.call(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": scheme}],
        )

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    def screenshot(self, width: int) -> bytes:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 500,
        )
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])


# What sticks out: elements whose right edge passes the viewport, and the page's width.
OVERFLOW_JS = """
(() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.height && box.right > width + 0.5) {
      out.push(`${el.tagName.toLowerCase()}.${el.className}: right ${box.right}`);
    }
  }
  return {width, scroll: document.documentElement.scrollWidth, out: out.slice(0, 10)};
})()
"""

# WCAG contrast of every visible text against the first opaque background behind it.
CONTRAST_JS = """
(() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92
                                                          : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.99)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const worst = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || Number(style.opacity) === 0) continue;
    const a = lum(rgb(style.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    worst.push({ratio: Math.round(ratio * 100) / 100, text: node.textContent.trim().slice(0, 40),
                color: style.color, tag: el.tagName.toLowerCase() + '.' + el.className});
  }
  worst.sort((x, y) => x.ratio - y.ratio);
  return worst.slice(0, 5);
})()
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = Browser()
    try:
        yield chromium
    finally:
        chromium.close()


def write_page(folder: Path, papers: int) -> Path:
    """The HTML part of the example digest with its first `papers` papers, as a file."""
    env = make_environment(postal_address="Paper digest · 12 Example Street · 75001 Paris")
    message = render_message(
        example_digest(papers), env, sender="Paper digest <digest@example.org>",
        now=datetime(2026, 8, 22, 6, 30, tzinfo=UTC),
    )  # fmt: skip
    part = message.get_body(("html",))
    assert part is not None
    page = folder / f"digest-{papers}.html"
    page.write_text(part.get_content(), encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The 20-paper example (checked) and its first 4 papers (also pictured)."""
    folder = tmp_path_factory.mktemp("email")
    return {n: write_page(folder, n) for n in (20, 4)}


def shots_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("DIGEST_WRITE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        return SHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.mark.parametrize(("width", "scheme"), VIEWS)
def test_the_email_fits_and_reads_at_each_width_light_and_dark(
    browser: Browser,
    pages: dict[int, Path],
    width: int,
    scheme: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    for papers, page in sorted(pages.items(), reverse=True):
        browser.open(page.as_uri())
        browser.view(width, scheme)
        overflow = browser.evaluate(OVERFLOW_JS)
        assert overflow["width"] == width
        assert overflow["scroll"] <= width and not overflow["out"], (papers, overflow)
        contrast = browser.evaluate(CONTRAST_JS)
        assert contrast, "no visible text"
        assert contrast[0]["ratio"] >= 4.5, (papers, contrast)
        if scheme == "dark":  # the dark rules apply: the page is dark, the text light
            body = browser.evaluate("getComputedStyle(document.body).backgroundColor")
            assert body == "rgb(13, 17, 23)", body
    png = browser.screenshot(width)  # of the last page opened: the short one
    assert png.startswith(b"\x89PNG")
    target = shots_folder(tmp_path_factory) / f"digest-{width}-{scheme}.png"
    target.write_bytes(png)
    report(f"{target} (lowest contrast {contrast[0]['ratio']}:1, {contrast[0]['tag']})")
