"""Keras callbacks of a training run: the per-epoch validation Dice (through the one
evaluator), the best model + checkpoint for --resume, and the stop point where a held-back
Ctrl-C/SIGTERM is raised between batches.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edge import signals
from edge.fsutil import atomic_path, write_json_atomic
from edge.log import say
from edge.model.evaluate import LabelledFrames, score
from train import evaluate
from train.config import RUN_MODEL, TrainConfig
from train.losses import bce_dice_per_image, multi_bce_dice_per_image
from train.modelio import KerasBackend, config_meta, seg_model

STATE_FILE = "state.json"  # ckpt/STATE_FILE: epoch, best val_dice, patience count
CKPT_DIR = "ckpt"


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
            say(f"early stopping: val_dice has not improved for {st['wait']} epochs "
                f"(best {st['best_val_dice']:.4f} at epoch {st['best_epoch']})")
            self.model.stop_training = True
        if (self.out / "history.csv").is_file():
            evaluate.write_curves(self.out / "history.csv", self.out / "curves.png")
