"""Running for months: the systemd units are valid, and a real `digest run` process stops
cleanly on SIGTERM in the middle of sending, losing nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from smtp_server import free_port
from test_outbox import (
    SlowHandler,
    messages_by_status,
    received_ids,
    seed_outbox,
    wait_for,
    worker_env,
)

ROOT = Path(__file__).resolve().parents[1]
UNITS = ["digest.service", "digest-send.service", "digest-send.timer"]


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing: .ci/run installs Debian's systemd")
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    digest = Path(sys.executable).with_name("digest")
    for unit in UNITS:
        text = (ROOT / "deploy" / unit).read_text()
        # verify checks that ExecStart's program exists: point it at this installation.
        (tmp_path / unit).write_text(text.replace("/opt/paper-digest/bin/digest", str(digest)))
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / u) for u in UNITS)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    complaints = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and complaints == [], result.stderr


def test_the_service_stops_on_sigterm_mid_send_and_loses_nothing(tmp_path: Path) -> None:
    handler = SlowHandler(0.002)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        url = f"sqlite:///{tmp_path / 'digest.db'}"
        seed_outbox(url, 300)
        env = worker_env(tmp_path, url, controller.port)
        service = subprocess.Popen(
            [sys.executable, "-m", "digest", "-v", "run"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_for(handler, 50, service)
        assert service.poll() is None, service.communicate()
        service.send_signal(signal.SIGTERM)
        _out, err = service.communicate(timeout=10)
        assert service.returncode == 0, err
        assert b"Traceback" not in err and b"event=service_stopped" in err
        assert messages_by_status(url).get("sending", 0) == 0
        # What it did not send is still in the outbox: a worker sends it, once.
        worker = subprocess.Popen(
            [sys.executable, "-m", "digest", "worker", "--once"], cwd=tmp_path, env=env
        )
        worker.wait(timeout=240)
        deadline = time.monotonic() + 10
        while len(handler.raw) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        controller.stop()
    counts = received_ids(handler)
    assert len(counts) == 300 and max(counts.values()) == 1
