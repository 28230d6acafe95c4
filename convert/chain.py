"""The one-command chain: prune -> strip -> export every format -> validate (gate) -> sidecars
-> report, all inside a staging folder next to --out that is renamed into place only when the
gate passes. A failed gate, a bad input or a crash leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convert import onnx_export, quantize, web
from convert.common import (
    GateFailed,
    converter_versions,
    file_sizes,
    publish_dir,
    remove_stale_staging,
    save_keras_atomic,
    staging,
    utc_now,
)
from convert.data import Source, calibration_frames, labelled_frames, load_frames, open_source
from convert.prune import PruneConfig, prune_model, sparsity_report, sparsity_table
from convert.report import REPORT_JSON, quick_latency_ms, write_report
from convert.targets import onnx_ops, target_report
from convert.validate import GateConfig, GateResult, results_table, validate
from edge.errors import OutputError, UserInputError
from edge.fsutil import atomic_write_bytes
from edge.log import warn
from edge.model.metadata import ModelMeta, sha256_file, write_meta
from edge.model.postprocess import PostprocessConfig

DEFAULT_CALIB_FRAMES = 200  # seeded real training frames for int8 calibration
# Target sparsity; 0 = no pruning (the default): unstructured pruning gives a smaller gzip,
# not a faster model, on LiteRT/XNNPACK and ONNX Runtime, and on a small clinic fine-tune it
# cost 0.04 Dice (over the 0.01 gate) where --prune 0 lost 0.0002. Opt in for download size.
DEFAULT_PRUNE = 0.0


@dataclass(frozen=True)
class Format:
    """suffix: file suffix. convert: (keras model, calibration frames, PreprocessConfig) ->
    file bytes. calibrated: needs calibration frames."""

    suffix: str
    convert: Callable[..., bytes]
    calibrated: bool = False


FORMATS: dict[str, Format] = {
    "int8": Format(".tflite", quantize.to_int8, calibrated=True),
    "int8-float-io": Format(".tflite", quantize.to_int8_float_io, calibrated=True),
    "fp16": Format(".tflite", quantize.to_fp16),
    "fp32": Format(".tflite", quantize.to_fp32),
    "onnx": Format(".onnx", onnx_export.to_onnx),
    "web": Format(".tflite", web.to_web, calibrated=True),  # LiteRT.js: float I/O, batch 1
}
DEFAULT_FORMATS = tuple(FORMATS)


@dataclass(frozen=True)
class ChainConfig:
    """formats: names from FORMATS. prune: target sparsity (0 = skip pruning).
    calib_frames/seed: int8 calibration. val_fraction: subject split for a bare model file.
    threshold/min_area/presence_threshold: post-processing written to the sidecars and used
    by the gate (None = the run folder's choice, else edge's default).
    name/version: sidecar fields (name defaults to the run folder or file stem).
    heads: U-Net++ only: the device model averages its first K heads; the nested nodes only
    the dropped heads need are not exported (fewer MACs). None: every head."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    prune: float = DEFAULT_PRUNE
    prune_epochs: int = PruneConfig.epochs
    calib_frames: int = DEFAULT_CALIB_FRAMES
    seed: int = 0
    val_fraction: float = 0.2
    gate: GateConfig = field(default_factory=GateConfig)
    threshold: float | None = None  # None: the run's config.json, else edge's default
    min_area: int | None = None
    presence_threshold: float | None = None
    name: str | None = None
    version: str = "1"
    latency_runs: int = 50
    command: str = ""
    heads: int | None = None  # U-Net++: keep the first K heads (None: all, averaged)


def check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserInputError(f"--formats {','.join(formats)}: unknown {unknown or 'none given'}; "
                             f"choose from {','.join(FORMATS)}")


def check_calibration(cfg: ChainConfig) -> None:
    """Fail before any work when int8 is asked for without calibration frames."""
    if cfg.calib_frames <= 0 and any(FORMATS[f].calibrated for f in cfg.formats):
        raise UserInputError(f"--calib-frames {cfg.calib_frames}: empty calibration set; int8 "
                             "needs real training frames (default 200)")


def check_out(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier conversion output."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / REPORT_JSON).exists())):
        raise OutputError(f"--out {out} exists and is not an edge-convert output folder; "
                          "choose a new or empty folder")


def _model_name(model_arg: Path, cfg: ChainConfig) -> str:
    if cfg.name:
        return cfg.name
    return model_arg.resolve().name if model_arg.is_dir() else model_arg.stem


def run_chain(model_arg, data_dir, out_dir, cfg: ChainConfig = ChainConfig(),
              log: Callable[[str], None] = print) -> dict:
    """Convert MODEL into every format in cfg.formats under out_dir; returns the report.
    Raises UserInputError/ModelError/OutputError (bad input) or GateFailed."""
    check_formats(cfg.formats)
    check_calibration(cfg)
    out = Path(out_dir)
    check_out(out)
    for p in remove_stale_staging(out):
        log(f"edge-convert: removed {p.name}, left by an interrupted run")
    overrides = {"threshold": cfg.threshold, "min_area": cfg.min_area,
                 "presence_threshold": cfg.presence_threshold}
    source, src = open_source(model_arg, data_dir, cfg.val_fraction, cfg.seed,
                              post_overrides=overrides)
    if cfg.heads is not None:
        source = _keep_heads(source, cfg.heads, log)
    log(f"edge-convert: {src.model_path} -> {out}; input {src.pre.input_hw}, scale "
        f"{src.pre.scale:.6g}, offset {src.pre.offset}; {len(src.train)} train / "
        f"{len(src.val)} val frames; formats {','.join(cfg.formats)}; prune {cfg.prune}")
    with staging(out) as stage:  # removed on every way out; renamed to out on success
        report = _convert_all(source, src, stage, _model_name(Path(model_arg), cfg), cfg, log)
        publish_dir(stage, out)
    log(f"edge-convert: wrote {out}")
    return report


def _prune_step(model, src: Source, stage: Path, name: str, cfg: ChainConfig, log):
    """(model to convert, sparsity report): the pruned model, or the source as it is."""
    if cfg.prune <= 0:
        rep = sparsity_report(model)
        return model, {**rep, "target": 0.0, "table": sparsity_table(rep), "file": None}
    if src.classes:
        raise UserInputError(f"--prune {cfg.prune}: pruning fine-tunes on nerve masks only; "
                             "pass --prune 0 for a multi-class model")
    x, y = load_frames(src.train, src.pre, src.nerve_class)
    log(f"prune: to {cfg.prune:.2f} sparsity, {cfg.prune_epochs} epochs on {len(x)} frames")
    pruned = prune_model(model, x, y, PruneConfig(target_sparsity=cfg.prune,
                                                  epochs=cfg.prune_epochs, seed=cfg.seed))
    path = save_keras_atomic(pruned, stage / f"{name}-pruned.keras")
    rep = sparsity_report(pruned)
    log(sparsity_table(rep))
    return pruned, {**rep, "target": cfg.prune, "table": sparsity_table(rep),
                    "file": path.name, **file_sizes(path)}


def _export_step(model, src: Source, stage: Path, name: str, cfg: ChainConfig, log):
    """Write every format; returns (variant -> path, variant -> extra facts)."""
    calib = None
    if any(FORMATS[f].calibrated for f in cfg.formats):
        calib = calibration_frames(src.train, src.pre, cfg.calib_frames, cfg.seed)
    paths, facts = {}, {}
    for fmt in cfg.formats:
        spec = FORMATS[fmt]
        log(f"export: {fmt}")
        data = spec.convert(model, calib, src.pre)
        path = atomic_write_bytes(stage / f"{name}-{fmt}{spec.suffix}", data)
        paths[fmt] = path
        facts[fmt] = {"format": fmt}
        if spec.calibrated:
            facts[fmt]["input_quant"] = quantize.check_input_quant(data, src.pre)
            if facts[fmt]["input_quant"]["ok"] is False:  # recorded; backends still cope
                log(f"warning: {fmt} input quantization {facts[fmt]['input_quant']} is not "
                    "pixel - 128; the device falls back to the float quantize path")
            facts[fmt]["calibration_frames"] = int(len(calib))
        if spec.suffix == ".onnx":
            facts[fmt]["onnx"] = {"opset": onnx_export.ONNX_OPSET, "ops": onnx_ops(path),
                                  "parity": onnx_export.parity(model, path, calib if calib
                                                               is not None else _val_x(src))}
    return paths, facts


def _val_x(src: Source) -> np.ndarray:
    return load_frames(src.val[: onnx_export.PARITY_FRAMES], src.pre)[0]


def _gate_step(source, converted, paths, src: Source, cfg: ChainConfig, log) -> GateResult:
    """source/converted: KerasBackends of the trained and the (pruned) converted model."""
    from edge.model.backends import open_backend
    from edge.model.segmodel import SegModel

    frames = labelled_frames(src.val, src.pre, src.nerve_class, src.class_ids)
    log(f"validate: {len(frames)} frames of {len(src.summary()['val_subjects'])} validation "
        "subjects")
    ref, conv = SegModel(source, src.settings), SegModel(converted, src.settings)
    exports = {name: SegModel(open_backend(path), src.settings) for name, path in paths.items()}
    result = validate(ref, ref if converted is source else conv, exports, frames, cfg.gate)
    log(results_table(result.rows))
    if not result.passed:
        raise GateFailed("gate failed, nothing written: " + "; ".join(result.failures)
                         + _pruning_way_out(result, cfg))
    for line in result.warnings:  # below --min-dice, written under --allow-low-dice
        warn(line)  # "edge-convert: warning: LINE"
    return result


def _pruning_way_out(result: GateResult, cfg: ChainConfig) -> str:
    """The first thing to try when a pruned model lost Dice or drifted: no pruning."""
    if cfg.prune <= 0 or not any("drop" in f or "drift" in f for f in result.failures):
        return ""
    return (f"; this model was pruned to {cfg.prune:g}: convert it with --prune 0 first "
            f"(pruning makes the file smaller, not faster)")


def _keep_heads(source, heads: int, log):
    """The U-Net++ device model with its first ``heads`` heads: what every format exports
    and what the gate compares against."""
    from train.model import count_macs, select_heads
    from train.modelio import KerasBackend

    try:
        model = select_heads(source.model, heads)
    except ValueError as e:
        raise UserInputError(f"{source.model_path}: {e}") from e
    log(f"edge-convert: U-Net++ heads 1..{heads} kept: {count_macs(model) / 1e9:.3f} GMAC "
        f"(all heads {count_macs(source.model) / 1e9:.3f})")
    return KerasBackend(model, source.threads, source.model_path)


def _convert_all(source, src: Source, stage: Path, name: str, cfg: ChainConfig, log) -> dict:
    """source: the trained model as a KerasBackend (its Keras model is source.model)."""
    from train.modelio import KerasBackend

    converted, prune_rep = _prune_step(source.model, src, stage, name, cfg, log)
    paths, facts = _export_step(converted, src, stage, name, cfg, log)
    conv_backend = source if converted is source.model else KerasBackend(converted)
    result = _gate_step(source, conv_backend, paths, src, cfg, log)
    post = src.post
    x1 = load_frames(src.val[:1], src.pre)[0]
    base = _base_report(name, src, cfg, post, prune_rep, result)
    for fmt, path in paths.items():
        row = {**result.rows[fmt], **facts[fmt], "variant": fmt, "file": path.name,
               **file_sizes(path), "sparsity": prune_rep["pruned_sparsity"]}
        lat = quick_latency_ms(path, x1, runs=cfg.latency_runs)
        row["latency_ms"], row["latency"] = lat["median_ms"], lat
        if path.suffix == ".tflite":
            base["targets"].append(target_report(path))
        write_meta(path, _meta(name, src, cfg, post, base, row))
        base["variants"].append(row)
    base["references"] = [{"variant": k, **v} for k, v in result.rows.items()
                          if v["role"] == "reference"]
    write_report(stage, base)
    return base


def _base_report(name: str, src: Source, cfg: ChainConfig, post: PostprocessConfig,
                 prune_rep: dict, result: GateResult) -> dict:
    return {
        "name": name, "version": cfg.version, "created_utc": utc_now(), "command": cfg.command,
        "source": source_provenance(src),
        "data": {**src.summary(), "seed": cfg.seed, "calibration_frames":
                 min(cfg.calib_frames, len(src.train))},
        "preprocess": {"input_hw": list(src.pre.input_hw), "roi": src.pre.roi,
                       "scale": src.pre.scale,
                       "offset": src.pre.offset, "channels": src.pre.channels},
        "postprocess": {"threshold": post.threshold, "min_area": post.min_area,
                        "presence_threshold": post.presence_threshold},
        "gate": gate_summary(result, cfg.gate),
        "prune": prune_rep, "converters": converter_versions(), "variants": [], "targets": [],
    }


def gate_summary(result: GateResult, gate: GateConfig) -> dict:
    """The gate's rules and verdict, for the report and every sidecar: a model written below
    the Dice floor (--allow-low-dice) says so wherever it goes."""
    return {"passed": result.passed, "failures": result.failures,
            "max_dice_drop": gate.max_dice_drop, "max_drift": gate.max_drift,
            "min_dice": gate.min_dice, "low_dice_allowed": gate.allow_low_dice,
            "max_fp_rate": gate.max_fp_rate,
            "below_min_dice": bool(result.warnings), "warnings": result.warnings}


def source_provenance(src: Source) -> dict:
    """Which Keras model was converted, without the build machine's paths: the run folder's
    name, the file's name and its sha256 (what an audit can check a copy against)."""
    return {"run": src.run.name if src.run else None, "file": src.model_path.name,
            "sha256": sha256_file(src.model_path)}


def _meta(name: str, src: Source, cfg: ChainConfig, post: PostprocessConfig, base: dict,
          row: dict) -> ModelMeta:
    """The sidecar edge-run reads, with provenance in ``extra``."""
    metrics = {k: row[k] for k in ("per_image_dice", "pooled_dice", "iou", "precision",
                                   "recall", "detection_rate", "dice_drop", "drift_mean",
                                   "drift_max", "false_positive_rate", "n_empty_truth",
                                   "classes") if k in row}
    return ModelMeta(
        name=name, version=cfg.version, input_hw=src.pre.input_hw, scale=src.pre.scale,
        offset=src.pre.offset, threshold=post.threshold, min_area=post.min_area,
        presence_threshold=post.presence_threshold,
        classes=src.classes,  # the run's class list (CLASSES.md); None = nerve-only
        extra={
            "format": row["format"], "roi": src.pre.roi, "source_model": base["source"],
            "training_data":
            base["data"], "validation": metrics, "input_quant": row.get("input_quant"),
            "sparsity": {"target": base["prune"]["target"],
                         "pruned_kernels": base["prune"]["pruned_sparsity"],
                         "all_kernels": base["prune"]["overall_sparsity"]},
            "converters": base["converters"], "created_utc": base["created_utc"],
            "gate": {k: base["gate"][k] for k in ("min_dice", "max_dice_drop", "max_fp_rate",
                                                   "below_min_dice", "warnings")},
        },
    )
