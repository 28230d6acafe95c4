"""The one data setting of the whole test suite: where the real ultrasound data lives.

The real data is never committed. Tests that need it ask for a fixture below; the folder comes
from the environment variable ``NERVE_EDGE_DATA`` (default: ``../shared/data`` relative to
the repository root), and a test whose data is missing is skipped with the path and the fix.
The folder holds what docs/data.md prepares: ``kaggle-nerve/train`` (+ ``train_masks.csv``)
and ``usgra-seg/images`` + ``usgra-seg/masks``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_ENV = "NERVE_EDGE_DATA"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"


def data_root() -> Path:
    """NERVE_EDGE_DATA when set (and not empty), else the default beside the repository."""
    value = os.environ.get(DATA_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else DEFAULT_DATA


def missing_reason(path: Path) -> str:
    return (f"real data not found at {path}: set {DATA_ENV} to the folder holding "
            f"kaggle-nerve/ and usgra-seg/ (see docs/data.md)")


def require_data(*parts: str) -> Path:
    """The data folder (or a path inside it); skips the calling test when it is missing."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(missing_reason(path))
    return path


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real data folder (read-only)."""
    return require_data()


@pytest.fixture(scope="session")
def shared_data(real_data: Path) -> Path:
    """The same folder under the name tests/edge uses."""
    return real_data


@pytest.fixture(scope="session")
def kaggle_train() -> Path:
    """kaggle-nerve/train: SUBJECT_IMAGE.png + SUBJECT_IMAGE_mask.png."""
    return require_data("kaggle-nerve", "train")


@pytest.fixture(scope="session")
def usgra_data() -> Path:
    """usgra-seg: images/ + masks/ with class ids (1 = nerve)."""
    return require_data("usgra-seg")


@pytest.fixture(autouse=True)
def _serve_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """The web view's state (CA, keys, pairing secret) in a folder of this test's own, never
    the user's ~/.local/state (edge/view/state.py); subprocesses inherit it."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
