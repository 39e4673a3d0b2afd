"""Logging for the CLI and the service: one line per event, `key=value` fields, or JSON.

Modules log messages such as `event=message_sent subscriber=a@b.org attempt=1`; this
module only decides how a line looks. Secrets are never passed to a logger (database
URLs are logged without their password, SMTP passwords not at all).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_FIELD = re.compile(r"(\w+)=(.*?)(?=\s\w+=|$)", re.S)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, and each key=value field."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = dict(_FIELD.findall(message))
        if fields:
            data.update(fields)
        else:
            data["message"] = message
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure(verbose: bool, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True
    )
