"""The training loop: data -> model -> fit with validation Dice, best model, resume, logs.

Run folder (TrainConfig.out):
  model.keras         best model by validation per-image Dice (tf_keras; the hand-off)
  best.weights.h5     its weights
  config.json         the resolved TrainConfig (+ the layout found)
  split.json          {"train_subjects": [...], "val_subjects": [...]}
  history.csv         one row per epoch (loss, lr, val_loss, val_dice, ...)
  curves.png          loss and validation Dice vs epoch
  metrics.json        final validation metrics of the best model (threshold, presence gate)
  tensorboard/        TensorBoard logs
  ckpt/               last epoch's weights + optimizer + state.json (for --resume)

Under --strategy multiworker every worker trains; only the chief writes the run folder (the
others write to a temp folder, as tf.distribute requires every worker to save).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edge.errors import ModelError
from edge.fsutil import check_writable_dir, write_json_atomic
from edge.log import config_block, say
from edge.model.evaluate import LabelledFrames, score
from train import datasets
from train.augment import augment_config
from train.build import build_model, compile_model, freeze_encoder, load_init_weights
from train.callbacks import CKPT_DIR, STATE_FILE, BestAndResume, StopPoint, ValidationDice
from train.classes import class_ids, nerve_channel
from train.config import RUN_MODEL, STRATEGIES, Split, TrainConfig, write_run
from train.data import steps_per_epoch, train_dataset
from train.model import count_macs, inference_model
from train.modelio import KerasBackend, config_meta, open_seg_model, seg_model

TEMP_MARK, TEMP_END = ".tmp.", ".tmp"  # edge.fsutil.atomic_path: .NAME.XXXX.tmp[.SUFFIX]
OLD_TEMP_PREFIXES = (".tmp-", ".curves.", ".overlays.")  # earlier versions' partial files
TF_TEMP_SUFFIX = "_temp"  # tf.train.Checkpoint's staging folder of a save in progress
TF_TEMP_INDEX = "checkpoint.tmp"  # ... and its index file's atomic-write temp name


@dataclass(frozen=True)
class RunData:
    """Arrays and the split, decoded once."""

    layout: str
    train_subjects: list
    val_subjects: list
    x_train: np.ndarray
    y_train: np.ndarray
    val: LabelledFrames


# ---------------------------------------------------------------- setup


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Must run before any other TensorFlow op (multiworker needs a fresh runtime)."""
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ModelError("--strategy multiworker reads TF_CONFIG; set it on every worker "
                             '(e.g. {"cluster": {"worker": [...]}, "task": {...}})')
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    spec = resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in spec


def set_threads(threads: int | None) -> None:
    """TF CPU threads; only possible before the TF runtime starts (fresh CLI process)."""
    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(threads, 2)))
    except RuntimeError:  # TF already running in this process (library use, tests)
        current = tf.config.threading.get_intra_op_parallelism_threads()
        say(f"note: TensorFlow is already running; --threads {threads} ignored "
            f"(intra-op threads {current or 'default'})")


def prepare_data(cfg: TrainConfig) -> RunData:
    """Find, check, split and decode the frames (DataError on anything wrong)."""
    layout = cfg.layout or datasets.detect_layout(cfg.data)
    samples = datasets.find_samples(cfg.data, layout, cfg.nerve_class, cfg.subjects_csv)
    if cfg.folds >= 1:
        train_s, val_s = datasets.split_fold(samples, cfg.folds, cfg.fold, cfg.seed)
    else:
        train_s, val_s = datasets.split_by_subject(samples, cfg.val_fraction, cfg.seed)
    train_s = datasets.draw_frames(train_s, cfg.train_frames, cfg.seed)
    pre, ids = cfg.preprocess, class_ids(cfg.classes) if cfg.classes else None
    x_tr, y_tr = datasets.load_arrays(train_s, pre, cfg.nerve_class, cfg.cache_dir,
                                      cfg.resize_masks, ids)
    val = datasets.load_labelled(val_s, pre, cfg.nerve_class, cfg.cache_dir, cfg.resize_masks,
                                 ids)
    datasets.check_has_nerve(y_tr, "training", cfg.nerve_class)
    return RunData(layout, datasets.subjects_of(train_s), datasets.subjects_of(val_s),
                   x_tr, y_tr, val)




# ---------------------------------------------------------------- train


def _tensorboard(out: Path) -> list:
    """TensorBoard logging when the tensorboard package is installed (tf.summary needs it)."""
    if importlib.util.find_spec("tensorboard") is None:
        say("note: tensorboard is not installed: no TensorBoard logs "
            "(pip install tensorboard to get them)")
        return []
    return [keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False,
                                        profile_batch=0)]


def _restore(ckpt, restore_dir: Path, cfg: TrainConfig) -> dict:
    fresh = {"epoch": 0, "best_val_dice": -1.0, "best_epoch": 0, "wait": 0}
    if not cfg.resume:
        return fresh
    latest = tf.train.latest_checkpoint(str(restore_dir))
    state_path = restore_dir / STATE_FILE
    if latest is None or not state_path.is_file():
        raise ModelError(f"--resume: no checkpoint state in {restore_dir}; run without "
                         f"--resume to start a new run")
    ckpt.restore(latest).expect_partial()
    state = {**fresh, **json.loads(state_path.read_text())}
    say(f"resuming from {latest} after epoch {state['epoch']} "
        f"(best val_dice {state['best_val_dice']:.4f})")
    return state


def _write_run_files(out: Path, cfg: TrainConfig, data: RunData, device_model) -> None:
    resolved = {**cfg.to_dict(), "layout": data.layout,
                "n_train_frames": int(len(data.x_train)), "n_val_frames": int(len(data.val)),
                "params": int(device_model.count_params()), "macs": count_macs(device_model)}
    write_run(out, resolved, Split(tuple(data.train_subjects), tuple(data.val_subjects)))
    say(config_block("edge-train: resolved config", resolved))


def _final_metrics(out: Path, model, data: RunData, cfg: TrainConfig, extra: dict) -> dict:
    """Best model on the val subjects through edge.model.evaluate.score, with the settings the
    run hands on (config.json: threshold, normalization) -> metrics.json. Scores the saved
    hand-off file itself (loaded outside any distribution strategy)."""
    saved = out / RUN_MODEL
    if saved.is_file():
        scored = open_seg_model(saved)
    else:  # no epoch finished (nothing saved): the model in memory, the run's settings
        scored = seg_model(KerasBackend(model), config_meta(cfg))
    post = scored.settings.post
    ev = score(scored, data.val)
    per_class, nerve = ev.classes, ev.metrics
    if cfg.classes:  # the run's headline: the mean of the classes' per-image Dice
        nerve = {"per_image_dice": _mean_class_dice(per_class),
                 "pooled_dice": float(np.mean([m["pooled_dice"]
                                               for m in per_class.values()])),
                 "iou": None}
    result = {**nerve, "classes": per_class, **extra,
              "threshold": post.threshold, "min_area": post.min_area}
    write_json_atomic(out / "metrics.json", result)
    return result


def _mean_class_dice(metrics: dict) -> float:
    values = [m["per_image_dice"] for m in metrics.values() if m["per_image_dice"] is not None]
    return float(np.mean(values)) if values else 1.0


def remove_partial_files(out: Path) -> list[Path]:
    """Partial files a killed run left (atomic-write temp files, a checkpoint save in
    progress): nobody else writes into a run folder, so they are safe to remove."""
    removed = []
    for folder in (out, out / CKPT_DIR):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            stale = p.name.startswith(".") and (TEMP_MARK in p.name or p.name.endswith(TEMP_END)
                                                or p.name.startswith(OLD_TEMP_PREFIXES))
            tf_partial = p.name.endswith(TF_TEMP_SUFFIX) or p.name.startswith(TF_TEMP_INDEX)
            if not (stale or (folder.name == CKPT_DIR and tf_partial)):
                continue
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    return removed


def _remove_if_empty(out: Path, created_root: Path | None) -> None:
    """After a failure before training: no empty ckpt/, and no empty run folder (nor the
    parents this run made for it, up to created_root)."""
    folders = [out / CKPT_DIR]
    if created_root is not None:
        folders += [out, *[p for p in out.parents if created_root in (p, *p.parents)]]
    for folder in folders:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def train(cfg: TrainConfig) -> dict:
    """Train per cfg; returns the final validation metrics (also in out/metrics.json)."""
    set_threads(cfg.threads)
    strategy = make_strategy(cfg.strategy)  # before any other op (multiworker)
    keras.utils.set_random_seed(cfg.seed)
    chief = is_chief(strategy)
    real_out = Path(cfg.out)
    missing = [p for p in (real_out, *real_out.parents) if not p.exists()]
    created_root = missing[-1] if chief and missing else None
    if chief:
        check_writable_dir(real_out, "--out")
        for p in remove_partial_files(real_out):
            say(f"note: removed {p.name}, left by an interrupted run")
    out = real_out if chief else Path(tempfile.mkdtemp(prefix="edge-train-worker-"))
    try:
        return _train(cfg, strategy, out, real_out / CKPT_DIR, chief)
    except BaseException:
        if chief:
            _remove_if_empty(out, created_root)
        raise
    finally:
        if not chief:
            shutil.rmtree(out, ignore_errors=True)


def _train(cfg, strategy, out: Path, restore_dir: Path, chief: bool) -> dict:
    t_start = time.time()
    if cfg.resume and tf.train.latest_checkpoint(str(restore_dir)) is None:
        raise ModelError(f"--resume: no checkpoint in {restore_dir}; run without --resume "
                         f"to start a new run")
    data = prepare_data(cfg)
    steps = steps_per_epoch(len(data.x_train), cfg.batch, cfg.max_steps_per_epoch)
    with strategy.scope():
        model = build_model(cfg)
        if cfg.init_weights:
            load_init_weights(model, cfg.init_weights,
                              nerve_channel(cfg.classes, cfg.nerve_class) if cfg.classes
                              else None)
        if cfg.freeze_encoder:
            say(f"froze {freeze_encoder(model)} encoder layers")
        compile_model(model, cfg, steps)
        model.optimizer.build(model.trainable_variables)  # slots exist before a restore
        ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    state = _restore(ckpt, restore_dir, cfg)
    device_model = inference_model(model)  # shares the weights; U-Net++: heads averaged
    _write_run_files(out, cfg, data, device_model)
    ds = train_dataset(data.x_train, data.y_train, cfg.batch,
                       augment_config(cfg.augment, cfg.vflip, cfg.elastic), cfg.preprocess,
                       cfg.seed + state["epoch"], cfg.presence_head)
    callbacks = [
        ValidationDice(data.val, cfg, device_model),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=cfg.resume),
        BestAndResume(out, ckpt, state, cfg, device_model),
        StopPoint(),
    ]
    callbacks += _tensorboard(out)
    if state["epoch"] < cfg.epochs:
        model.fit(ds, epochs=cfg.epochs, initial_epoch=state["epoch"], steps_per_epoch=steps,
                  callbacks=callbacks, verbose=cfg.verbose if chief else 0)
    extra = {"best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
             "steps_per_epoch": steps, "batch": cfg.batch, "wall_s": time.time() - t_start,
             "val_subjects": data.val_subjects, "params": int(device_model.count_params()),
             "macs": count_macs(device_model)}
    result = _final_metrics(out, device_model, data, cfg, extra)
    if chief:
        say("validation (best model): " + json.dumps(
            {k: result[k] for k in ("per_image_dice", "pooled_dice", "iou", "best_epoch")}))
    return result
