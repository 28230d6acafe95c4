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

from edge import signals
from edge.clikit import config_block
from edge.errors import ModelError
from edge.fsutil import atomic_path, check_writable_dir, write_json_atomic
from edge.model.evaluate import LabelledFrames, score
from train import datasets, evaluate
from train.augment import augment_config
from train.classes import class_ids, nerve_channel
from train.config import RUN_MODEL, STRATEGIES, Split, TrainConfig, write_run
from train.data import steps_per_epoch, train_dataset
from train.initmodel import init_keras_path
from train.losses import (
    BceDiceLoss,
    DeepSupervisionLoss,
    MultiBceDiceLoss,
    SoftDice,
    bce_dice_per_image,
    multi_bce_dice_per_image,
)
from train.model import HEADS_LAYER, build_unet, count_macs, inference_model
from train.modelio import KerasBackend, config_meta, load_keras, open_seg_model, seg_model

# A fresh class channel starts at p = 1% everywhere (logit bias log(0.01 / 0.99)), not 50%:
# a rare structure's channel then starts near its background rate instead of spending the
# first epochs un-learning "everything is vessel" (the RetinaNet prior).
FRESH_CHANNEL_PRIOR = 0.01
FRESH_CHANNEL_BIAS = float(np.log(FRESH_CHANNEL_PRIOR / (1.0 - FRESH_CHANNEL_PRIOR)))
ENCODER_PREFIXES = ("stem", "enc", "pool", "bottleneck")  # layer names frozen by freeze_encoder
STATE_FILE = "state.json"
CKPT_DIR = "ckpt"
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
        print(f"note: TensorFlow is already running; --threads {threads} ignored "
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


def build_model(cfg: TrainConfig):
    kwargs = dict(cfg.model)
    if kwargs.get("preset") == "reference":
        from train.reference import build_reference

        return build_reference(tuple(cfg.input_hw))
    if "preset" in kwargs:
        raise ModelError(f"unknown model preset {kwargs['preset']!r}; use 'reference'")
    try:
        return build_unet(input_hw=tuple(cfg.input_hw), num_classes=len(cfg.class_list),
                          **kwargs)
    except ValueError as e:  # e.g. an input size the depth cannot halve evenly
        raise ModelError(str(e)) from e


def load_init_weights(model, path, nerve_index: int | None = None) -> None:
    """Copy weights from a trained model of the same architecture (fine-tuning); ``path`` is
    what --init-weights takes (the word default, a run folder, a .keras/.h5 file). With
    nerve_index (a multi-class model from a nerve-only one): every layer whose weight shapes
    match is copied, and the C-channel head takes the nerve head as channel nerve_index."""
    p = init_keras_path(path)
    print(f"init: weights from {p}")
    if nerve_index is not None:
        try:
            source = load_keras(p)
        except (ValueError, OSError, ModelError) as e:
            raise ModelError(f"--init-weights {p}: cannot load it ({str(e)[:120]})") from e
        print(init_from_nerve(model, source, nerve_index))
        return
    try:
        if p.suffix == ".h5":
            model.load_weights(str(p))
        else:
            model.set_weights(load_keras(p).get_weights())
    except (ValueError, OSError, ModelError) as e:
        raise ModelError(
            f"--init-weights {path} does not match this model ({str(e)[:120]}); it has no "
            f"sidecar or run config saying its architecture, so pass the same model flags "
            f"(--base-filters, --depth, --arch, ...) as the run that produced it") from e


def init_from_nerve(model, source, nerve_index: int) -> str:
    """Copy source's weights into model layer by layer (by name) where shapes match; the
    1x1 head ``logits`` of C channels gets the source's single nerve channel at nerve_index,
    fresh (random) weights and the FRESH_CHANNEL_PRIOR bias elsewhere. Returns the log
    line."""
    src = {layer.name: layer for layer in source.layers}
    copied, fresh, head_split = 0, [], False
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        theirs = src[layer.name].get_weights() if layer.name in src else None
        if theirs and [w.shape for w in theirs] == [w.shape for w in weights]:
            layer.set_weights(theirs)
            copied += 1
        elif layer.name == "logits" and theirs and theirs[0].shape[-1] == 1:
            kernel, bias = weights
            kernel[..., nerve_index:nerve_index + 1] = theirs[0]
            bias[:] = FRESH_CHANNEL_BIAS
            bias[nerve_index] = theirs[1][0]
            layer.set_weights([kernel, bias])
            copied, head_split = copied + 1, True
        else:
            fresh.append(layer.name)
    if fresh and fresh != ["logits"]:
        raise ModelError(f"--init-weights: layers {fresh[:4]} do not match this model; pass "
                         "the same model flags (--base-filters, --depth, ...) as its run")
    c = model.get_layer("logits").get_weights()[0].shape[-1]
    if not head_split:
        return f"init: copied all {copied} layers (the model already has {c} channels)"
    return (f"init: copied {copied} layers from the nerve-only model; head: channel "
            f"{nerve_index} = its nerve channel, the other {c - 1} channel(s) fresh (bias "
            f"p = {FRESH_CHANNEL_PRIOR})")


def freeze_encoder(model) -> int:
    frozen = 0
    for layer in model.layers:
        if layer.name.startswith(ENCODER_PREFIXES):
            layer.trainable = False
            frozen += 1
    return frozen


def lr_schedule(cfg: TrainConfig, steps: int):
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr * min_lr_fraction."""
    total = max(1, cfg.epochs * steps)
    warmup = min(int(cfg.warmup_epochs * steps), total // 2)
    start = cfg.lr * cfg.min_lr_fraction if warmup else cfg.lr
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=start, decay_steps=max(1, total - warmup),
        alpha=cfg.min_lr_fraction,  # a fraction of the peak (warmup_target) in tf_keras
        warmup_target=cfg.lr if warmup else None, warmup_steps=warmup)


def compile_model(model, cfg: TrainConfig, steps: int) -> None:
    optimizer = keras.optimizers.Adam(learning_rate=lr_schedule(cfg, steps))
    if HEADS_LAYER in {layer.name for layer in model.layers}:  # U-Net++ deep supervision
        model.compile(optimizer=optimizer,
                      loss=DeepSupervisionLoss(cfg.bce_weight, cfg.dice_weight))
        return
    loss_class = MultiBceDiceLoss if cfg.classes else BceDiceLoss
    mask_loss = loss_class(cfg.bce_weight, cfg.dice_weight)
    if cfg.presence_head:
        model.compile(optimizer=optimizer,
                      loss={"mask": mask_loss, "presence": keras.losses.BinaryCrossentropy()},
                      loss_weights={"mask": 1.0, "presence": cfg.presence_weight},
                      metrics={"mask": [SoftDice()]})
    else:
        model.compile(optimizer=optimizer, loss=mask_loss, metrics=[SoftDice()])


# ---------------------------------------------------------------- callbacks


def _atomic_save(save_fn, path: Path) -> None:
    """save_fn(tmp_path) then rename: a killed run never leaves half a model."""
    with atomic_path(path) as tmp:  # keeps the .keras/.h5 suffix Keras picks the format by
        save_fn(str(tmp))


class StopPoint(keras.callbacks.Callback):
    """Runs the kit's code after every batch: where edge.signals raises a Ctrl-C/SIGTERM held
    back while TensorFlow's and tf_keras' code ran (not raised inside them: h5py, C++)."""

    def __init__(self) -> None:
        super().__init__()
        self._supports_tf_logs = True  # no per-batch conversion of the logs

    def on_train_batch_end(self, batch, logs=None) -> None:  # noqa: ARG002
        signals.check()


class ValidationDice(keras.callbacks.Callback):
    """Each epoch: score the model on the cached val frames with edge.model.evaluate.score (the one
    evaluator; threshold and presence gate as on the device, no min area: a quick figure for
    choosing the checkpoint) and log val_dice (per-image, the early-stopping key),
    val_pooled_dice, val_iou, val_loss, lr."""

    def __init__(self, val: LabelledFrames, cfg: TrainConfig, device_model=None):
        super().__init__()
        self.val, self.cfg, self._backend = val, cfg, None
        self.device_model = device_model  # what is scored and saved (None: the fit model)

    def on_epoch_begin(self, epoch, logs=None):
        self.t_first, self.steps = None, 0

    def on_train_batch_end(self, batch, logs=None):
        # time from the end of the first step: the first one also builds the graph
        self.steps += 1
        if self.t_first is None:
            self.t_first = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        t_val = time.perf_counter()
        if self.steps > 1:
            logs["train_s_per_step"] = (t_val - self.t_first) / (self.steps - 1)
        if self.cfg.folds == 1:  # every frame trains: nothing is held out to score per epoch
            self._log_lr(logs)
            return
        if self._backend is None:  # one traced function for the whole run
            self._backend = seg_model(KerasBackend(self.device_model or self.model),
                                      config_meta(self.cfg))
        if self.cfg.classes:
            logs.update(self._classes_logs(), val_s=time.perf_counter() - t_val)
            self._log_lr(logs)
            return
        ev = score(self._backend, self.val, keep_prob=True)
        m, prob, y = ev.metrics, ev.prob[..., 0], self.val.labels
        presence = None if ev.presence is None else ev.presence[:, 0]
        loss = bce_dice_per_image(y[..., None], prob[..., None], self.cfg.bce_weight,
                                  self.cfg.dice_weight)
        val_loss = float(np.mean(loss))
        if presence is not None:
            target = y.reshape(len(y), -1).any(axis=1).astype(np.float32)
            p = np.clip(presence, 1e-7, 1 - 1e-7)
            bce = -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))
            val_loss += self.cfg.presence_weight * float(bce)
        logs.update(val_loss=val_loss, val_dice=m["per_image_dice"],
                    val_pooled_dice=m["pooled_dice"], val_iou=m["iou"],
                    val_s=time.perf_counter() - t_val)
        self._log_lr(logs)

    def _classes_logs(self) -> dict:
        """Multi-class: val_dice = mean over classes of the per-image Dice (frames where the
        class is present), val_<name>_dice each, val_loss the per-channel loss."""
        classes = self.cfg.class_list
        ev = score(self._backend, self.val, keep_prob=True)
        loss = multi_bce_dice_per_image(self.val.labels, ev.prob, self.cfg.bce_weight,
                                        self.cfg.dice_weight)
        logs = {"val_loss": float(np.mean(loss))}
        dices = []
        for c in classes:
            d = ev.classes[c["name"]]["per_image_dice"]
            logs[f"val_{c['name']}_dice"] = d
            dices.append(d if d is not None else 1.0)
        logs["val_dice"] = float(np.mean(dices))
        return logs

    def _log_lr(self, logs: dict) -> None:
        lr = self.model.optimizer.learning_rate  # tf_keras: the lr of the last step
        value = lr(self.model.optimizer.iterations) if callable(lr) else lr
        logs["lr"] = float(tf.convert_to_tensor(value))  # also a distributed variable


class BestAndResume(keras.callbacks.Callback):
    """Saves the best model on val_dice, stops after `patience` epochs without improvement,
    checkpoints weights + optimizer + epoch to ckpt/ every epoch, and redraws curves.png."""

    def __init__(self, out: Path, ckpt: tf.train.Checkpoint, state: dict, cfg: TrainConfig,
                 device_model=None):
        super().__init__()
        self.out, self.cfg, self.state = out, cfg, state
        self.device_model = device_model  # saved as model.keras (None: the fit model)
        self.manager = tf.train.CheckpointManager(ckpt, str(out / CKPT_DIR), max_to_keep=1)

    def on_epoch_end(self, epoch, logs=None):
        dice = float((logs or {}).get("val_dice", -1.0))
        st = self.state
        keep_last = self.cfg.folds >= 1  # CV / all frames: no choice of epoch on the held-out fold
        if dice > st["best_val_dice"] or keep_last:
            st.update(best_val_dice=dice, best_epoch=epoch + 1, wait=0)
            saved = self.device_model or self.model
            _atomic_save(lambda p: saved.save(p), self.out / RUN_MODEL)
            _atomic_save(lambda p: saved.save_weights(p), self.out / "best.weights.h5")
        else:
            st["wait"] += 1
        st["epoch"] = epoch + 1
        self.manager.save(checkpoint_number=epoch + 1)
        write_json_atomic(self.out / CKPT_DIR / STATE_FILE, st)
        if self.cfg.patience and st["wait"] >= self.cfg.patience and not keep_last:
            print(f"early stopping: val_dice has not improved for {st['wait']} epochs "
                  f"(best {st['best_val_dice']:.4f} at epoch {st['best_epoch']})")
            self.model.stop_training = True
        if (self.out / "history.csv").is_file():
            evaluate.write_curves(self.out / "history.csv", self.out / "curves.png")


# ---------------------------------------------------------------- train


def _tensorboard(out: Path) -> list:
    """TensorBoard logging when the tensorboard package is installed (tf.summary needs it)."""
    if importlib.util.find_spec("tensorboard") is None:
        print("note: tensorboard is not installed: no TensorBoard logs "
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
    print(f"resuming from {latest} after epoch {state['epoch']} "
          f"(best val_dice {state['best_val_dice']:.4f})")
    return state


def _write_run_files(out: Path, cfg: TrainConfig, data: RunData, device_model) -> None:
    resolved = {**cfg.to_dict(), "layout": data.layout,
                "n_train_frames": int(len(data.x_train)), "n_val_frames": int(len(data.val)),
                "params": int(device_model.count_params()), "macs": count_macs(device_model)}
    write_run(out, resolved, Split(tuple(data.train_subjects), tuple(data.val_subjects)))
    print(config_block("edge-train: resolved config", resolved))


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
            print(f"note: removed {p.name}, left by an interrupted run")
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
            print(f"froze {freeze_encoder(model)} encoder layers")
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
        print("validation (best model):", json.dumps(
            {k: result[k] for k in ("per_image_dice", "pooled_dice", "iou", "best_epoch")}))
    return result
