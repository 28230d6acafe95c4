"""tests/label: one Label Studio server for the whole folder (starting one takes a while)."""

from __future__ import annotations

import pytest

from tests.label.lsserver import start


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory):
    yield from start(tmp_path_factory.mktemp("labelstudio"))
