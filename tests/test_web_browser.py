"""Once in a real browser: a digest reaches a real SMTP server, the subscriber opens its
unsubscribe link in headless Chromium (Debian's chromium + chromium-driver, Selenium),
presses the button, and the next run does not mail them.

Outside CI the test skips when Chromium or its driver is missing; under CI=true it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from chromium import CHROMIUM, HEADLESS_FLAGS
from cli_runner import run_digest
from smtp_server import RecordingHandler, free_port, send_through

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "examples" / "pages"
KEY = "browser-test-secret-0123456789abcdef"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium = CHROMIUM
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        missing = "chromium" if not chromium else "chromedriver (chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is not installed (.ci/run installs it)")
        pytest.skip(f"{missing} is not installed: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in HEADLESS_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code, out, err = run_digest(capsys, *args)
    assert "Traceback" not in err, err
    return code, out


@pytest.fixture
def served(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`digest serve` running as its own process, as an operator starts it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    monkeypatch.setenv("DIGEST_PUBLIC_URL", base)
    monkeypatch.setenv("DIGEST_RANKER", "lexical")
    command = [sys.executable, "-m", "digest", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, cwd=clean_env, stderr=subprocess.PIPE)
    try:
        _wait_until_healthy(base, server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stderr is not None
        server.stderr.close()


def _wait_until_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    pause = threading.Event()
    for _ in range(300):
        if server.poll() is not None:
            assert server.stderr is not None
            raise AssertionError(f"digest serve exited: {server.stderr.read().decode()}")
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        pause.wait(0.1)
    raise AssertionError("digest serve did not answer /healthz")


def test_unsubscribe_in_a_real_browser_stops_the_next_digest(
    served: str,
    browser: Any,
    clean_env: Path,
    smtp_server: tuple[Controller, RecordingHandler],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    controller, handler = smtp_server
    send_through(monkeypatch, controller)
    monkeypatch.setenv("DIGEST_FROM", "Papers <papers@example.org>")
    pages = clean_env / "pages"
    pages.mkdir()
    shutil.copy(PAGES / "001_4dfcb878200cfaa6.txt", pages)
    (clean_env / "digest.toml").write_text(
        f'[[sources]]\nkind = "text-dump"\npath = "{pages}"\n\n'
        '[[subscribers]]\nemail = "ada@example.org"\nname = "Ada"\ntopics = ["language models"]\n\n'
        '[[subscribers]]\nemail = "bob@example.org"\ntopics = ["language models"]\n'
    )
    code, out = run(capsys, "send-now", "--force")
    assert code == 0, out
    mail = {m["To"].addresses[0].addr_spec: m for m in handler.messages}
    assert set(mail) == {"ada@example.org", "bob@example.org"}
    link = _unsubscribe_link(mail["ada@example.org"], served)

    browser.get(link)
    assert "ada@example.org" in browser.find_element(By.TAG_NAME, "main").text
    browser.find_element(By.XPATH, "//button[text()='Unsubscribe']").click()
    WebDriverWait(browser, 30).until(
        expected_conditions.text_to_be_present_in_element(
            (By.TAG_NAME, "h1"), "You are unsubscribed"
        )
    )

    # New papers arrive; the next run mails bob only.
    for name in ("000_0d1b150f40e33697.txt", "003_a148c10466c9a820.txt"):
        shutil.copy(PAGES / name, pages)
    before = len(handler.envelopes)
    code, out = run(capsys, "send-now", "--force")
    assert code == 0, out
    assert [e.rcpt_tos for e in handler.envelopes[before:]] == [["bob@example.org"]]
    assert re.search(r"ada@example\.org .*suppressed: unsubscribed \(web page\)", out)


def _unsubscribe_link(message: EmailMessage, base: str) -> str:
    html = message.get_body(("html",))
    assert html is not None
    links = re.findall(r'href="([^"]+)"', html.get_content())
    (link,) = {u for u in links if u.startswith(f"{base}/u/")}
    return str(link)
