"""edge.model.settings: the one resolver (flag > sidecar > default; per class: flag > the
class's own > the model's; ROI: --roi > sidecar > the source's region > none)."""

from __future__ import annotations

import json

import pytest

from edge.errors import ModelError
from edge.model.metadata import NERVE_COLOR, meta_from_dict
from edge.model.settings import Overrides, resolve

SIDE = {"threshold": 0.6, "min_area": 7, "presence_threshold": 0.3,
        "classes": [{"id": 1, "name": "nerve", "color": "#ffc800", "threshold": 0.4},
                    {"id": 2, "name": "vessel", "color": "#ff3030", "safety": True,
                     "min_area": 3}],
        "extra": {"roi": [10, 20, 300, 200]}}


def test_flags_win_over_the_sidecar_and_classes_fill_in_their_own():
    meta = meta_from_dict(SIDE)
    st = resolve(meta, (128, 176), 1)
    assert (st.threshold, st.min_area, st.presence_threshold) == (0.6, 7, 0.3)
    assert [(c.threshold, c.min_area) for c in st.classes] == [(0.4, 7), (0.6, 3)]
    st = resolve(meta, (128, 176), 1, Overrides(threshold=0.5, min_area=0))
    assert [(c.threshold, c.min_area) for c in st.classes] == [(0.5, 0), (0.5, 0)]
    assert st.class_posts[1].threshold == 0.5 and st.pre.input_hw == (128, 176)


def test_roi_precedence_flag_sidecar_source():
    meta = meta_from_dict(SIDE)
    st = resolve(meta, (128, 176), 1)
    assert (st.roi, st.roi_from) == ((10, 20, 300, 200), "sidecar")
    assert st.with_source_roi((0, 0, 50, 50)) is st  # the sidecar's crop wins
    flag = resolve(meta, (128, 176), 1, Overrides(roi=(1, 2, 3, 4)))
    assert (flag.roi, flag.roi_from) == ((1, 2, 3, 4), "--roi")
    bare = resolve(meta_from_dict({}), (128, 176), 1)
    assert (bare.roi, bare.roi_from) == (None, "none")
    src = bare.with_source_roi((5, 6, 7, 8))
    assert (src.roi, src.roi_from, src.pre.roi) == ((5, 6, 7, 8), "source", (5, 6, 7, 8))


def test_a_nerve_only_model_is_one_class_and_settings_are_json():
    st = resolve(meta_from_dict({}), (32, 48), 1)
    assert [(c.name, c.color) for c in st.classes] == [("nerve", NERVE_COLOR)]
    assert st.nerve_index == 0
    again = json.loads(json.dumps(st.to_dict()))
    assert again["classes"][0]["threshold"] == 0.5 and again["input_hw"] == [32, 48]


@pytest.mark.parametrize("roi", [[0, 0, 0, 10], [1, 2, 3], "0,0,5,5", [-1, 0, 5, 5]])
def test_a_bad_sidecar_roi_is_a_model_error_naming_the_field(roi):
    with pytest.raises(ModelError, match="extra.roi"):
        resolve(meta_from_dict({"extra": {"roi": roi}}), (32, 48), 1)
