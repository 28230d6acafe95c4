"""edge.log: the one message channel (stdout for notes, stderr for progress and warnings)."""

from __future__ import annotations

import logging

from edge import log


def test_say_note_and_warn_go_to_their_streams(capsys):
    log.configure("edge-test")
    log.say("resuming from ckpt")
    log.note("loading frames: 1/2")
    log.warn("int8 Dice below the floor")
    out, err = capsys.readouterr()
    assert out == "resuming from ckpt\n"
    assert err == "loading frames: 1/2\nedge-test: warning: int8 Dice below the floor\n"


def test_configure_again_replaces_the_routing(capsys):
    log.configure("a")
    log.configure("b")
    log.warn("once")
    assert capsys.readouterr().err == "b: warning: once\n"
    assert len(logging.getLogger(log.LOGGER).handlers) == 1


def test_unconfigured_library_use_still_prints(capsys):
    logging.getLogger(log.LOGGER).handlers.clear()
    log.say("note")
    assert capsys.readouterr().out == "note\n"


def test_config_block_is_one_line_per_field():
    text = log.config_block("edge-x: resolved config", {"epochs": 3, "roi": None,
                                                        "hw": (128, 176)})
    assert text.splitlines() == ["edge-x: resolved config:", "  epochs  3", "  roi     -",
                                 "  hw      128,176"]
