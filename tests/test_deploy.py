"""Running for months: the systemd units are valid, the web app's unit runs beside the
service on the same state as hardened, and a real `digest run` process stops cleanly on
SIGTERM in the middle of sending, losing nothing."""

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

from digest.cli import cli

ROOT = Path(__file__).resolve().parents[1]
UNITS = ["digest.service", "digest-send.service", "digest-send.timer", "digest-web.service"]
SERVICES = [unit for unit in UNITS if unit.endswith(".service")]
# What only digest.service does: its command, SIGHUP reload, the config and outbox it reads.
SERVICE_ONLY = {"ExecStart", "ExecReload", "Environment"}


def unit_settings(unit: str) -> dict[str, list[str]]:
    """A unit file's "Section.Key" settings, each with its values in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in (ROOT / "deploy" / unit).read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(f"{section}.{key}", []).append(value)
    return settings


def environment(settings: dict[str, list[str]]) -> dict[str, str]:
    """The Environment= variables of a unit's settings."""
    return dict(v.partition("=")[::2] for v in settings.get("Service.Environment", []))


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


@pytest.mark.parametrize("unit", SERVICES)
def test_every_service_runs_a_digest_command_on_the_one_state_folder(unit: str) -> None:
    settings = unit_settings(unit)
    program, command = settings["Service.ExecStart"][0].split()[:2]
    assert program == "/opt/paper-digest/bin/digest" and command in cli.commands
    # One user name: the units share a dynamic user, so each can write what another made
    # (the SQLite database, its WAL files, the outbox) under UMask=0077.
    main = unit_settings("digest.service")
    for key in ("User", "EnvironmentFile", "StateDirectory", "WorkingDirectory"):
        assert settings[f"Service.{key}"] == main[f"Service.{key}"], key
    url = environment(settings)["DIGEST_DATABASE_URL"]
    assert url == environment(main)["DIGEST_DATABASE_URL"]
    assert url.startswith(f"sqlite:////var/lib/{main['Service.StateDirectory'][0]}/")


def test_the_web_unit_serves_the_links_and_is_hardened_like_the_service() -> None:
    web = unit_settings("digest-web.service")
    main = unit_settings("digest.service")
    assert web["Service.ExecStart"] == ["/opt/paper-digest/bin/digest serve"]
    assert web["Service.Restart"] == ["on-failure"]
    assert "Service.ExecReload" not in web  # serve has no SIGHUP handler: it would die
    # Everything else digest.service sets, the web unit sets alike: the sandbox, the
    # restart and stop policy, the ordering and the install target.
    for key, values in main.items():
        if key.removeprefix("Service.") not in SERVICE_ONLY and key != "Unit.Description":
            assert web.get(key) == values, key
    # ... and nothing more (no ReadWritePaths=, no capability): it writes unsubscribes and
    # feedback to the database, in the state folder, and nowhere else.
    assert set(web) <= set(main)
    # The address comes from DIGEST_SERVE_HOST/PORT in digest.env, not from the unit.
    assert not {"DIGEST_SERVE_HOST", "DIGEST_SERVE_PORT"} & set(environment(web))


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
