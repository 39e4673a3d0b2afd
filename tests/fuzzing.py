"""Shared by the parser fuzz tests: their settings, and damaged copies of real inputs."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def damaged(
    draw: st.DrawFn, original: bytes, splices: Sequence[bytes], longest_copy: int = 300
) -> bytes:
    """A real input with a few cuts, splices (of `splices`), copied runs and byte flips,
    as a damaged download looks."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(["flip", "cut", "delete", "insert", "duplicate"]))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:]
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 200))]
        elif action == "insert":
            data[at:at] = draw(st.sampled_from(list(splices)))
        else:
            data[at:at] = data[at : at + draw(st.integers(1, longest_copy))]
    return bytes(data)
