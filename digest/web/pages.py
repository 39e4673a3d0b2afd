"""The pages `digest serve` shows: small, self-contained HTML, everything escaped.

Jinja2 with autoescape on; one inline style sheet allowed by its hash in the
Content-Security-Policy, no scripts, no images, nothing loaded from elsewhere. Forms and
links are relative, so the app works under any path prefix of `DIGEST_PUBLIC_URL`.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import jinja2

STYLE = (
    "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:34em;"
    "margin:3em auto;padding:0 1em;color:#1f2328;background:#fff}"
    "h1{font-size:1.4em;margin:0 0 .6em}p{margin:0 0 1em}"
    "button{font:inherit;padding:.5em 1.2em;border:0;border-radius:6px;background:#1f6feb;"
    "color:#fff;cursor:pointer}a{color:#0969da}.quiet{color:#59636e;font-size:.9em}"
    "@media (prefers-color-scheme:dark){body{background:#0d1117;color:#e6edf3}"
    "a{color:#4493f8}.quiet{color:#9198a1}}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{ title }} · paper-digest</title>
<style>{{ style|safe }}</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
{% block body %}{% endblock %}
</main>
</body>
</html>
"""

_PAGES = {
    "layout.html": _LAYOUT,
    "confirm.html": """{% extends "layout.html" %}{% block body %}
<p>Stop sending the paper digest to <strong>{{ email }}</strong>?</p>
<form method="post">
<button type="submit" name="confirm" value="yes">Unsubscribe</button>
</form>
<p class="quiet">Nothing changes until you press the button.</p>
{% endblock %}""",
    "unsubscribed.html": """{% extends "layout.html" %}{% block body %}
<p><strong>{{ email }}</strong> will get no more digests.</p>
<p class="quiet">Unsubscribed by mistake? Reply to any digest and ask to be added back.</p>
{% endblock %}""",
    "feedback.html": """{% extends "layout.html" %}{% block body %}
<p>Your next digests will have {{ "more" if verdict == "more" else "fewer" }} papers like
{% if paper_title %}<em>{{ paper_title }}</em>{% else %}this one{% endif %}.</p>
<p><a href="{{ undo }}">Undo</a></p>
{% endblock %}""",
    "undone.html": """{% extends "layout.html" %}{% block body %}
<p>Your digests will not take
{% if paper_title %}<em>{{ paper_title }}</em>{% else %}this paper{% endif %} into account.</p>
<p><a href="{{ redo }}">Redo</a></p>
{% endblock %}""",
    "error.html": """{% extends "layout.html" %}{% block body %}
<p>{{ message }}</p>
{% if hint %}<p class="quiet">{{ hint }}</p>{% endif %}
{% endblock %}""",
}

_ENV = jinja2.Environment(
    loader=jinja2.DictLoader(_PAGES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, title: str, **values: Any) -> str:
    return _ENV.get_template(name).render(title=title, style=STYLE, **values)
