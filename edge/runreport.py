"""What edge-run says about a run: the resolved config block at the start (describe) and the
JSON report at the end (report, write_report: --report FILE, written atomically).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from edge import log
from edge.errors import EdgeError
from edge.fsutil import write_json_atomic
from edge.model.metadata import ModelMeta
from edge.model.segmodel import SegModel
from edge.runconfig import RunConfig

HIDDEN_CONFIG = ("source", "serve_token", "pacs")  # a PACS URL may hold a password


def describe(cfg: RunConfig, model: SegModel) -> str:
    """The resolved config, one short block."""
    b, st = model.backend, model.settings
    h, w = st.input_hw
    src = cfg.source
    pace = (f", fps {src.fps:g}" if src.fps else "") + (", realtime" if src.realtime else "")
    roi = ",".join(map(str, st.roi)) + f" ({st.roi_from})" if st.roi else "none"
    return "\n".join([
        f"edge-run: model   {model.path} ({model.meta.name} {model.meta.version}, "
        f"{h}x{w}x{st.channels} {b.input_dtype.name}, sha256 {model.sha256_check})",
        f"          backend {b.name}, threads {b.threads or 'default'}"
        f"{', int8 fast path' if model.fast else ''}",
        f"          source  {src.kind}{'' if src.target is None else ' ' + str(src.target)}"
        f"{pace}, roi {roi}, max frames {cfg.max_frames or 'unlimited'}",
        f"          post    threshold {st.threshold}, min area {st.min_area} px, "
        f"smooth {st.smooth}, bad frames: {cfg.on_bad_frame}",
        f"          outputs {', '.join(describe_outputs(cfg))}",
        f"          classes {describe_classes(model.meta)}",
    ])


def describe_outputs(cfg: RunConfig) -> list[str]:
    """The outputs asked for, in the order the config block names them."""
    return [name for name, on in (
        ("window", not cfg.headless), ("record " + str(cfg.record), cfg.record),
        ("masks " + str(cfg.save_masks), cfg.save_masks), ("serve " + str(cfg.serve), cfg.serve),
        ("report " + str(cfg.report), cfg.report), ("dicom " + str(cfg.dicom_out), cfg.dicom_out),
        ("pacs", cfg.pacs),
        (f"capture {cfg.capture} every {cfg.capture_every:g} s", cfg.capture)) if on
    ] or ["none (headless)"]


def describe_classes(meta: ModelMeta) -> str:
    """"nerve #ffc800, vessel #ff3030 (safety, threshold 0.4)": the sidecar's classes (a
    nerve-only model: its one class), with the values the sidecar gives each."""
    def one(c) -> str:
        notes = [n for n, on in (("safety", c.safety), (f"threshold {c.threshold}",
                 c.threshold is not None), (f"min area {c.min_area}", c.min_area is not None))
                 if on]
        return f"{c.name} {c.color}" + (f" ({', '.join(notes)})" if notes else "")

    return ", ".join(one(c) for c in meta.class_list)


def report(cfg: RunConfig, model: SegModel, summary: dict) -> dict:
    st = model.settings
    return {
        **summary,
        "model_path": str(model.path),
        "model_sha256": model.sha256,
        "sidecar_sha256": model.meta.sha256,
        "sha256_check": model.sha256_check,
        "model_warnings": model.warnings,  # e.g. converted below the Dice floor
        "model_name": model.meta.name,
        "model_version": model.meta.version,
        "backend": model.backend.name,
        "threads": model.backend.threads,
        "source": asdict(cfg.source),
        "config": {
            **{k: v for k, v in asdict(cfg).items() if k not in HIDDEN_CONFIG},
            "roi": list(st.roi) if st.roi else None,  # --roi, the sidecar's or the source's
            "roi_from": st.roi_from,
            "threshold": st.threshold,
            "min_area": st.min_area,
            "smooth": st.smooth,
            "input_hw": list(st.input_hw),
            "int8_fast_path": model.fast,
        },
        "settings": st.to_dict(),  # the resolved settings (edge.model.settings), classes too
    }


def write_report(path: str, data: dict) -> None:
    """Write the report atomically; if that fails at the end of a run, print it to stderr
    rather than lose it, and raise a runtime error (exit 1)."""
    try:
        write_json_atomic(path, data)
    except OSError as e:
        log.note(json.dumps(data, indent=2))
        raise EdgeError(f"--report {path}: cannot write it ({e.strerror or e}); the report "
                        f"was printed to stderr above") from e
