"""Where models live: the packaged default, and the ones installed on a board (edge-deploy:
install one, keep the one before it, go back).

    store = ModelStore(Path("/var/lib/nerve-edge"))
    entry = store.install(Path("clinic_int8.tflite"))      # verified, copied, made current
    store.rollback()                                       # the previous one is current again

Layout under the state folder (systemd's StateDirectory on a board)::

    models/<name>-v<version>-<sha12>/model.tflite   one folder per installed model: the file,
    models/<name>-v<version>-<sha12>/model.json     renamed model.<suffix>, and its sidecar
    models/current  -> <folder>                     what edge-run --model .../models/current runs
    models/previous -> <folder>                     what rollback goes back to

An install never touches the running model's folder: the new folder is staged beside it and
renamed into place, then ``current`` is re-pointed with one rename of a new link (atomic on
POSIX), so a power cut leaves either the old or the new model current, never half of one.
Nothing here restarts the service: the caller does (``systemctl restart nerve-edge``).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ModelError, UserInputError
from edge.fsutil import check_writable_dir, model_format, systemd_state_dir
from edge.model.metadata import (
    ModelMeta,
    check_sha256,
    load_meta,
    low_dice_warning,
    sidecar_path,
)

MODELS_DIR = "models"
CURRENT = "current"
PREVIOUS = "previous"
# A board's state folder (deploy/nerve-edge.service: StateDirectory=nerve-edge).
BOARD_STATE = Path("/var/lib/nerve-edge")
RUNNABLE = ("tflite", "onnx")
# edge-convert's default --min-dice (convert.validate.DEFAULT_MIN_DICE; a test checks they
# agree): a model whose held-out Dice is below it is not installed without --force, also when
# its conversion lowered or switched off the floor (--min-dice 0, --allow-low-dice).
SHIP_FLOOR = 0.5  # model_format() kinds a board runs
DEFAULT = "default"  # edge-deploy install default: the model this package ships
# The packaged models, first match wins: the trained model once it ships, else the fixture.
DEFAULT_MODELS = {
    "tflite": ("nerve_default_int8.tflite", "nerve_fixture_int8.tflite"),
    "onnx": ("nerve_default.onnx", "nerve_fixture.onnx"),
}
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_state_dir() -> Path:
    """$STATE_DIRECTORY (set by systemd for the unit), else $NERVE_EDGE_STATE, else the
    board's /var/lib/nerve-edge."""
    own = os.environ.get("NERVE_EDGE_STATE")
    return systemd_state_dir() or (Path(own) if own else BOARD_STATE)


def default_model_path(backend: str | None = None, models_dir=None) -> Path:
    """The packaged model for ``backend`` (tflite unless "onnx"): nerve_default.* if present,
    else the fixture. Dropping nerve_default_int8.tflite / nerve_default.onnx (+ their .json
    sidecars) into edge/models switches the default with no code change. ``models_dir``
    overrides the packaged folder (tests)."""
    models = importlib.resources.files("edge") / "models" if models_dir is None else models_dir
    names = DEFAULT_MODELS["onnx" if backend == "onnx" else "tflite"]
    for name in names:
        candidate = models / name
        if candidate.is_file():
            return Path(str(candidate))
    raise ModelError(
        f"no packaged model ({' or '.join(names)}) in {models}: pass --model PATH, or build the "
        f"fixture with scripts/make_fixture_model.py"
    )


def installed_model_file(folder: Path) -> Path | None:
    """The model file of an installed folder (model.tflite or model.onnx), or None when
    ``folder`` is not one."""
    found = [folder / f"model.{kind}" for kind in RUNNABLE if (folder / f"model.{kind}").is_file()]
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class Installed:
    """One installed model, as ``status`` shows it."""

    folder: Path
    model: Path
    meta: ModelMeta

    @property
    def gate(self) -> dict:
        """The conversion gate's figures from the sidecar (empty when it has none)."""
        validation = self.meta.extra.get("validation") or {}
        gate = self.meta.extra.get("gate") or {}
        keys = ("per_image_dice", "dice_drop", "n_images", "false_positive_rate",
                "n_empty_truth")
        figures = {k: validation[k] for k in keys if k in validation}
        if "min_dice" in gate:
            figures["min_dice"] = gate["min_dice"]
        figures["forced_below_floor"] = bool(gate.get("below_min_dice"))
        return figures

    def describe(self) -> dict:
        return {"folder": str(self.folder), "model": self.model.name, "name": self.meta.name,
                "version": self.meta.version, "sha256": self.meta.sha256, "gate": self.gate}


def verify(model: Path, force: bool = False) -> ModelMeta:
    """Everything an install checks before it copies a byte; UserInputError/ModelError name
    the file and the fix. The backend opens the file, so a file that is not a model (or one
    this board's runtime cannot run) is refused here, not at the next service start."""
    if not model.is_file():
        raise UserInputError(f"{model}: no such model file; give the .tflite or .onnx that "
                             f"edge-convert wrote (with its .json sidecar beside it)")
    kind = model_format(model)
    if kind not in RUNNABLE:
        raise UserInputError(f"{model}: a {kind} model does not run on a board; convert it "
                             f"first: edge-convert {model} --out out/")
    side = sidecar_path(model)
    if not side.is_file():
        raise UserInputError(f"{model}: no sidecar {side.name} beside it; copy the .json "
                             f"edge-convert wrote with this model (it holds the settings, "
                             f"the sha256 and the gate figures)")
    meta = load_meta(model)
    if meta.sha256 is None:
        raise ModelError(f"{side}: no sha256 in the sidecar; install a model written by "
                         f"edge-convert, whose sidecar records it")
    actual, state = check_sha256(model, meta, allow_mismatch=True)
    if state == "mismatch":
        raise ModelError(f"{model}: sha256 {actual[:12]}... does not match its sidecar "
                         f"{side.name} ({meta.sha256[:12]}...): the file is not the model the "
                         f"sidecar describes; copy both files again from edge-convert's --out")
    refusal = low_dice_warning(meta) or _below_ship_floor(meta)
    if refusal and not force:
        raise UserInputError(f"{model.name}: {refusal}; pass --force to install it anyway")
    from edge.model.backends import (
        open_backend,  # loads the runtime: only when the file looks right
    )

    open_backend(model)
    return meta


def _below_ship_floor(meta: ModelMeta) -> str | None:
    dice = (meta.extra.get("validation") or {}).get("per_image_dice")
    if not isinstance(dice, (int, float)) or dice >= SHIP_FLOOR:
        return None
    floor = (meta.extra.get("gate") or {}).get("min_dice")
    how = f" (converted with --min-dice {floor:g})" if isinstance(floor, (int, float)) else ""
    return (f"per-image Dice {dice:.4f} on its held-out frames is below {SHIP_FLOOR:g}{how}: "
            f"not validated for patients")


def _folder_name(model: Path, meta: ModelMeta) -> str:
    base = _SAFE.sub("-", f"{meta.name}-v{meta.version}").strip("-") or model.stem
    return f"{base}-{meta.sha256[:12]}"


def _point(link: Path, target_name: str) -> None:
    """Make ``link`` a relative symlink to ``target_name`` in one rename (atomic)."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target_name)
    os.replace(tmp, link)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ModelStore:
    """The models folder of one state folder."""

    def __init__(self, state_dir: Path):
        self.root = Path(state_dir) / MODELS_DIR

    def _entry(self, link_name: str) -> Installed | None:
        link = self.root / link_name
        if not link.is_symlink():
            return None
        folder = link.resolve()
        model = installed_model_file(folder)
        if model is None:
            raise ModelError(f"{link} points to {folder}, which holds no installed model; "
                             f"install one again with edge-deploy install MODEL")
        return Installed(folder, model, load_meta(model))

    def current(self) -> Installed | None:
        return self._entry(CURRENT)

    def previous(self) -> Installed | None:
        return self._entry(PREVIOUS)

    def _check_writable(self) -> None:
        check_writable_dir(self.root, "models folder (run as the service user, or pass "
                           "--state DIR)")

    def _copy_in(self, model: Path, meta: ModelMeta) -> Path:
        """The model and its sidecar in their own folder, staged and renamed into place."""
        final = self.root / _folder_name(model, meta)
        if installed_model_file(final) is not None:
            return final  # the same bytes (the name holds the sha256) are already here
        stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            dest = stage / f"model{model.suffix.lower()}"
            shutil.copyfile(model, dest)
            shutil.copyfile(sidecar_path(model), sidecar_path(dest))
            for f in (dest, sidecar_path(dest)):
                os.chmod(f, 0o644)
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            check_sha256(dest, meta)  # the copy is the file that was verified
            os.chmod(stage, 0o755)
            if final.exists():  # a broken leftover of another install: replace it
                shutil.rmtree(final)
            os.rename(stage, final)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _fsync_dir(self.root)
        return final

    def install(self, model: Path | str, force: bool = False) -> Installed:
        """Verify ``model`` ("default": the packaged model), copy it in and make it current;
        the current one becomes previous (unless it is the same model)."""
        model = default_model_path() if str(model) == DEFAULT else Path(model)
        meta = verify(model, force=force)
        self._check_writable()
        folder = self._copy_in(model, meta)
        old = self.current()
        if old is not None and old.folder != folder:
            _point(self.root / PREVIOUS, old.folder.name)
        _point(self.root / CURRENT, folder.name)
        _fsync_dir(self.root)
        return Installed(folder, installed_model_file(folder), meta)

    def rollback(self) -> Installed:
        """Make the previous model current again (and the current one previous)."""
        prev, cur = self.previous(), self.current()
        if prev is None:
            raise UserInputError(f"{self.root}: no previous model to go back to; install one "
                                 f"with edge-deploy install MODEL")
        self._check_writable()
        _point(self.root / CURRENT, prev.folder.name)
        if cur is not None:
            _point(self.root / PREVIOUS, cur.folder.name)
        _fsync_dir(self.root)
        return prev

    def status(self) -> dict:
        """Both models with their gate figures, and the path the unit's --model names."""
        cur, prev = self.current(), self.previous()
        return {"models_dir": str(self.root), "run_path": str(self.root / CURRENT),
                "current": cur.describe() if cur else None,
                "previous": prev.describe() if prev else None}


def resolve_installed(model: str | None) -> str | None:
    """edge-run's --model: a folder edge-deploy installed (models/current, or one model's
    folder) stands for its model file, named by its real folder (so the report says which
    install ran); anything else is returned as given."""
    if model is None or not Path(model).is_dir():
        return model
    found = installed_model_file(Path(model).resolve())
    return str(found) if found is not None else model
