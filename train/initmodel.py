"""The model a fine-tune starts from (``edge-train --init-weights``) and what it says about
its own architecture.

    --init-weights default              the packaged float model (edge/models/
                                        nerve_default_float.keras + its .json sidecar)
    --init-weights runs/unet            an edge-train run folder (its config.json)
    --init-weights runs/unet/model.keras  a run's model file (the folder's config.json)
    --init-weights model.keras          a file with a sidecar model.json (edge-train
                                        export-init writes one), or a bare file

The architecture (build_unet kwargs), input size and normalization of the new model come from
the init model's sidecar or run config; an architecture flag given on the command line must
agree with it (``merge_architecture``), else one line names the flag, both values and the fix.
A bare file says nothing: the flags then decide, and the weight shapes are compared when the
weights are copied (train.build.load_init_weights). No TensorFlow here: the CLI resolves all of
this before TensorFlow starts.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import UserInputError
from edge.model.metadata import load_meta, sha256_file, sidecar_path
from train.config import DEFAULT_MODEL, RUN_MODEL, run_of

DEFAULT_INIT = "default"  # --init-weights default: the packaged float model
PACKAGED_INIT = "nerve_default_float.keras"  # in edge/models, with nerve_default_float.json
INIT_KEYS = ("model", "input_hw", "scale", "offset", "roi", "threshold", "classes")

# Architecture flags of edge-train: argparse dest -> (flag, key in the model dict). Dropout
# and --input-size are not here: no weight depends on them (the network is fully
# convolutional), so a fine-tune may change them freely (a clinic's scanner may need a larger
# input; build_unet checks that the size suits the depth).
ARCH_FLAGS = {
    "preset": ("--preset", "preset"),
    "arch": ("--arch", "arch"),
    "deep_supervision": ("--no-deep-supervision", "deep_supervision"),
    "base_filters": ("--base-filters", "base_filters"),
    "depth": ("--depth", "depth"),
    "stem_stride": ("--stem-stride", "stem_stride"),
    "upsample": ("--upsample", "upsample"),
    "separable": ("--separable", "separable"),
    "presence_head": ("--presence-head", "presence_head"),
    "max_filters": ("--max-filters", "max_filters"),
}
SWITCHES = ("deep_supervision", "separable", "presence_head")  # flags without a value


@dataclass(frozen=True)
class InitModel:
    """path: the Keras file. model: its build_unet kwargs (None: a bare file, unknown).
    input_hw, scale, offset: its input (None: unknown). described_by: the file that said so."""

    path: Path
    model: dict[str, Any] | None = None
    input_hw: tuple[int, int] | None = None
    scale: float | None = None
    offset: float | None = None
    described_by: str = ""


def packaged_init() -> Path:
    """The packaged float Keras model (`--init-weights default`)."""
    path = Path(str(importlib.resources.files("edge") / "models" / PACKAGED_INIT))
    if not path.is_file():
        raise UserInputError(f"--init-weights {DEFAULT_INIT}: {path} is missing from this "
                             "install; reinstall nerve-edge, or pass a .keras file or run folder")
    return path


def init_keras_path(arg: str | os.PathLike) -> Path:
    """The Keras file behind --init-weights ARG (the word default, a run folder or a file)."""
    if str(arg) == DEFAULT_INIT:
        return packaged_init()
    path = Path(arg)
    if path.is_dir():
        path = path / RUN_MODEL
    if not path.is_file():
        raise UserInputError(f"--init-weights {arg}: no such model file; pass {DEFAULT_INIT} "
                             "(the packaged model), an edge-train run folder or a .keras/.h5 "
                             "file")
    return path


def resolve_init(arg: str | os.PathLike) -> InitModel:
    """What --init-weights ARG is: its file, and its architecture from the sidecar (checked
    against the file's sha256) or the run folder's config.json; bare otherwise."""
    path = init_keras_path(arg)
    side = sidecar_path(path)
    if side.is_file():
        meta = load_meta(path)
        if meta.extra.get("model") is not None:
            if meta.sha256 and meta.sha256 != sha256_file(path):
                raise UserInputError(
                    f"--init-weights {arg}: {side.name} describes another file (sha256 "
                    f"{meta.sha256[:12]}...); write them together with edge-train export-init")
            return InitModel(path, dict(meta.extra["model"]), meta.input_hw, meta.scale,
                             meta.offset, str(side))
    run = run_of(path)
    if run is not None and run.model_path.resolve() == path.resolve():
        c = run.config
        return InitModel(path, dict(c.model), tuple(c.input_hw), c.scale, c.offset,
                         str(run.path / "config.json"))
    return InitModel(path)


def _init_value(init: InitModel, key: str) -> Any:
    if key == "preset":
        return init.model.get("preset")
    if "preset" in init.model:  # the reference preset has no build_unet kwargs
        return None
    return init.model.get(key, DEFAULT_MODEL.get(key))


def mismatch_message(dest: str, given: Any, init: InitModel, theirs: Any) -> str:
    flag, key = ARCH_FLAGS[dest]
    fix = (f"drop {flag}" if dest in SWITCHES
           else f"drop {flag} or pass {flag} {theirs}")
    mine = flag if dest in SWITCHES else f"{flag} {given}"
    return (f"{mine} does not match the --init-weights model ({key} {theirs} "
            f"in {init.described_by}): {fix}; the architecture comes from the init model")


def merge_architecture(init: InitModel, given: dict[str, Any], dropout: float | None = None
                       ) -> tuple[dict[str, Any], tuple[int, int]]:
    """(build_unet kwargs, input_hw) of a fine-tune from ``init``: the init model's, checked
    against ``given`` (the architecture flags passed explicitly: dest -> value); the first
    disagreement is a UserInputError naming the flag, both values and the fix. ``dropout``
    (given explicitly) replaces the init model's."""
    if init.model is None:
        raise ValueError("merge_architecture needs an init model that says its architecture")
    for dest, value in given.items():
        theirs = _init_value(init, ARCH_FLAGS[dest][1])
        if value != theirs:
            raise UserInputError(mismatch_message(dest, value, init, theirs))
    model = dict(init.model)
    if dropout is not None and "preset" not in model:
        model["dropout"] = dropout
    return model, tuple(init.input_hw) if init.input_hw else None
