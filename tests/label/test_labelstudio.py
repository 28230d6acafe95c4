"""edge-train label push / pull against a real Label Studio (tests/label/lsserver.py): frames
pushed with pre-labels, annotated through the API as polygons and as brush masks from truth
masks, pulled back: Dice >= 0.98; empty frames kept; bad URL / token one line, exit 2."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from tests.cli_contract import assert_one_error
from tests.conftest import require_data
from tests.label.annotate import annotate_project
from tests.label.helpers import dice, edge_train, read_ids, synthetic
from tests.label.lsserver import free_port
from train.datafiles import read_class_ids
from train.label.lsclient import LabelStudio

N_REAL = 5


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """5 USGRA-seg frames (nerve = class 1) + 2 frames with no nerve: (folder, truth)."""
    usgra = require_data("usgra-seg")
    folder = tmp_path_factory.mktemp("frames")
    truth = {}
    for path in sorted((usgra / "images").glob("*.png"))[:N_REAL]:
        shutil.copyfile(path, folder / path.name)
        truth[path.name] = (read_class_ids(usgra / "masks" / path.name) == 1).astype(np.uint8)
    truth.update(synthetic(folder, n=0, empty=2))
    return folder, truth


def _push(server, folder, project, token=None):
    return edge_train("label", "push", "--frames", str(folder), "--model", "default", "--url",
                      server.url, "--token", token or server.token, "--project", project)


@pytest.mark.parametrize("kind", ["polygon", "brush"])
def test_push_annotate_pull(labelstudio, frames, tmp_path, kind):
    folder, truth = frames
    proc = _push(labelstudio, folder, kind)
    assert proc.returncode == 0, proc.stderr
    assert f"created project '{kind}': {len(truth)} frames uploaded" in proc.stdout
    again = _push(labelstudio, folder, kind)
    assert f"reused project '{kind}': 0 frames uploaded" in again.stdout, again.stderr
    leave, cancel = ("frame_00.png",), ("0001.png",)
    annotate_project(labelstudio.url, labelstudio.token, kind, truth, kind, leave, cancel)
    out = tmp_path / "pulled"
    proc = edge_train("label", "pull", "--url", labelstudio.url, "--token", labelstudio.token,
                      "--project", kind, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (f"{len(truth) - 2} annotated frames (1 with no nerve)" in proc.stdout
            and "1 not annotated yet, 1 skipped" in proc.stdout), proc.stdout
    for name, mask in truth.items():
        got = out / "masks" / name
        if name in leave + cancel:
            assert not got.exists()
            continue
        ids = read_ids(got)
        assert set(np.unique(ids)) <= {0, 1}
        assert dice(ids, mask) >= 0.98 if mask.any() else not ids.any(), name
        image = cv2.imread(str(out / "images" / name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(image, cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED))


def test_personal_access_token_works(labelstudio, frames):
    refresh = LabelStudio(labelstudio.url, labelstudio.token).call("POST", "/api/token/", {})
    proc = _push(labelstudio, frames[0], "pat", token=refresh["token"])
    assert proc.returncode == 0, proc.stderr


def test_wrong_token_is_one_line(labelstudio, frames):
    proc = _push(labelstudio, frames[0], "x", token="wrong-token-123456")
    assert_one_error(proc, "edge-train", labelstudio.url, "--token")


def test_server_that_does_not_answer_is_one_line(frames):
    url = f"http://127.0.0.1:{free_port()}"
    proc = edge_train("label", "push", "--frames", str(frames[0]), "--url", url,
                      "--token", "t")
    assert_one_error(proc, "edge-train", url, "does not answer")


def test_pull_of_a_missing_project_writes_nothing(labelstudio, tmp_path):
    out = tmp_path / "out"
    proc = edge_train("label", "pull", "--url", labelstudio.url, "--token", labelstudio.token,
                      "--project", "no such project", "--out", str(out))
    assert_one_error(proc, "edge-train", "no such project", "--project")
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
