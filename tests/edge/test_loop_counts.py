"""A stop (Ctrl-C, SIGTERM) can land at any line of the loop: the report's counters agree.

The soak test once failed with ``nerve_area.frames`` one above ``frames`` (13899 == 13898):
the nerve area was counted in the post-processing stage, the frame only at its end, and the
SIGINT landed in between (while the frame was rendered for the web view). Here the stop is
raised by the sink, i.e. after post-processing, every time.
"""

from __future__ import annotations

import json

import pytest

import edge.loop
from edge.loop import run
from edge.runconfig import RunConfig
from edge.signals import Terminated


class InterruptingSink:
    """A headless output that raises ``stop`` while writing the third frame."""

    needs_overlay = False

    def __init__(self, stop: type[BaseException]):
        self.stop, self.writes = stop, 0

    def write(self, result) -> None:  # noqa: ARG002
        self.writes += 1
        if self.writes == 3:
            raise self.stop()

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        pass


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Terminated])
def test_a_stop_while_rendering_counts_the_frame_nowhere(tmp_path, monkeypatch, stop):
    sink = InterruptingSink(stop)
    monkeypatch.setattr(edge.loop, "open_sinks", lambda cfg, stack, fps, model=None, **kw: [sink])
    report = tmp_path / "run.json"
    with pytest.raises(stop):
        run(RunConfig(headless=True, report=str(report), quiet=True))
    data = json.loads(report.read_text())
    assert data["frames"] == 2
    assert data["nerve_area"]["frames"] == 2
    assert {c["frames"] for c in data["classes"].values()} == {2}
