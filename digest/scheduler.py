"""`digest run`: the long-running service. APScheduler 3.x jobs that call the pipeline.

No logic of its own: which subscriber is due, and whether a slot was already handled,
is decided by `pipeline.due_now` from the database, so the service can be stopped,
restarted or run on several hosts at once without a digest going out twice. The job
store stays in memory and is rebuilt from the config at start and on SIGHUP.

Jobs, all on one worker thread so that no two runs of this process overlap:
- `fetch`: read the sources every `DIGEST_FETCH_INTERVAL` minutes (the Hugging Face list
  of a day keeps filling for two days, and upvotes keep rising);
- `send <schedule>`: one per distinct (zone, time, frequency) among the subscribers, at
  that time; it fetches first, so a send uses the fullest list;
- `catch-up`: every 5 minutes and once at start: sends a slot missed by less than the
  grace (downtime, a suspended machine, a DST gap) and records older ones as skipped.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest import pipeline
from digest.app import App, load_app_config, open_app
from digest.config import Settings
from digest.errors import DigestError
from digest.schedule import Schedule

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
CATCH_UP_MINUTES = 5
_CRON_DAYS = {"daily": "*", "weekdays": "mon-fri"}
_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Service:
    """The daemon: builds jobs from the config, runs them, stops cleanly."""

    def __init__(self, settings: Settings, config_path: Path | None, clock: Clock) -> None:
        self.settings = settings
        self.config_path = config_path
        self.clock = clock
        self.halt = threading.Event()  # set by SIGTERM/SIGINT: finish in-flight, then stop
        # Deliberate job defaults (APScheduler's own are misfire 1 s, which would drop a
        # daily run that starts a second late):
        # - misfire_grace_time: a run that could not start on time (busy worker, suspended
        #   machine) still starts within the catch-up grace; the database decides the rest;
        # - coalesce: a backlog of missed runs of one job collapses into one run, so a
        #   subscriber never gets two digests at once;
        # - max_instances=1: a slow run is never overlapped by the next run of its job.
        self.scheduler = BlockingScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "misfire_grace_time": max(int(settings.catch_up_grace * 3600), 60),
                "coalesce": True,
                "max_instances": 1,
            },
        )
        self.app: App | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def run(self) -> None:
        """Run until SIGTERM or SIGINT; SIGHUP reloads the config."""
        config = load_app_config(self.settings, self.config_path)
        with open_app(self.settings, config) as app:
            self.app = app
            self._install_jobs()
            previous = {
                sig: signal.signal(sig, self._on_signal)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
            }
            log.info("event=service_started jobs=%d", len(self.scheduler.get_jobs()))
            try:
                self.scheduler.start()  # blocks until shutdown
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            log.info("event=service_stopped")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload()
            return
        log.info("event=stopping signal=%s", signal.Signals(signum).name)
        self.halt.set()
        # Let the running job finish its messages in flight (it sees `halt`), then stop.
        threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}).start()

    def reload(self) -> None:
        """Re-read the config file and rebuild the jobs; a bad file keeps the old ones."""
        assert self.app is not None
        try:
            config = load_app_config(self.settings, self.config_path)
        except DigestError as exc:
            log.error("event=reload_failed error=%s", exc)
            return
        self.app.config = config
        self.scheduler.remove_all_jobs()
        self._install_jobs()
        log.info("event=reloaded subscribers=%d", len(config.subscribers))

    # -- jobs -----------------------------------------------------------------------------

    def _install_jobs(self) -> None:
        minutes = self.settings.fetch_interval
        self.scheduler.add_job(
            self.fetch, IntervalTrigger(minutes=minutes), id="fetch", name="fetch"
        )
        for schedule in self.schedules():
            self.scheduler.add_job(
                self.send_due,
                cron_trigger(schedule),
                id=f"send {schedule.describe()}",
                name=f"send {schedule.describe()}",
            )
        self.scheduler.add_job(
            self.send_due,
            IntervalTrigger(minutes=CATCH_UP_MINUTES),
            id="catch-up",
            name="catch-up",
            next_run_time=self.clock(),
        )

    def schedules(self) -> list[Schedule]:
        assert self.app is not None
        found = {pipeline.schedule_for(sub, self.settings) for sub in self.app.config.subscribers}
        return sorted(found, key=lambda s: (s.zone.key, s.send_at, s.frequency, s.weekday))

    def fetch(self) -> None:
        assert self.app is not None
        try:
            now = self.clock()
            reports = pipeline.fetch(self.app, None, now)
            pipeline.index_recent(self.app, now)
            for report in reports:
                for error in report.errors:
                    log.warning("event=source_failed source=%s error=%s", report.name, error)
            self._warn_about_outages(now)
        except DigestError as exc:
            log.error("event=fetch_failed error=%s", exc)

    def send_due(self) -> None:
        assert self.app is not None
        if self.halt.is_set():
            return
        try:
            report = run_scheduled(self.app, self.clock(), self.halt, self.clock)
        except DigestError as exc:
            log.error("event=send_failed error=%s", exc)
            return
        if report.storm:
            log.error("event=error_storm %s", report.storm)

    def _warn_about_outages(self, now: datetime) -> None:
        assert self.app is not None
        for source, problem in outages(self.app, now).items():
            log.warning("event=source_outage source=%s %s", source, problem)


def run_scheduled(
    app: App, now: datetime, halt: threading.Event | None = None, clock: Clock | None = None
) -> pipeline.RunReport:
    """One scheduled run: fetch, then plan and deliver whoever is due (nothing if nobody)."""
    options = pipeline.RunOptions(
        kind="scheduled", grace=timedelta(hours=app.settings.catch_up_grace)
    )
    if not app.config.subscribers:
        return pipeline.RunReport()
    return pipeline.run_once(app, options, now, halt=halt, clock=clock)


def outages(app: App, now: datetime) -> dict[str, str]:
    """Sources that have not fetched successfully for longer than the alert threshold."""
    limit = timedelta(hours=app.settings.source_alert_after)
    found = {}
    for source, health in app.store.source_health().items():
        last = health.get("last_success")
        if health.get("recent_failures") and (last is None or now - last > limit):
            since = f"since {last:%Y-%m-%d %H:%M}" if last else "ever"
            found[source] = f"no successful fetch {since}: {health.get('last_error')}"
    return found


def cron_trigger(schedule: Schedule) -> CronTrigger:
    days = _CRON_DAYS.get(schedule.frequency) or _WEEKDAY_NAMES[schedule.weekday]
    return CronTrigger(
        day_of_week=days,
        hour=schedule.send_at.hour,
        minute=schedule.send_at.minute,
        timezone=schedule.zone,
    )
