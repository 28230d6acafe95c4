"""Which kernels make arm64 and x86 masks differ? Raw model outputs on IDENTICAL inputs.

Run by `make check-arm64` on both machines (numpy + the interpreters only, no edge package):

    python check_arm64_probe.py inputs FRAMES_DIR MODEL INPUTS.npz [--count N]   (x86 only)
    python check_arm64_probe.py run MODEL INPUTS.npz OUTPUTS.npz
    python check_arm64_probe.py stages FRAMES_DIR MODEL OUT.npz [--count N]       (both)
    python check_arm64_probe.py pipeline JOBS.json                                 (both)

``inputs`` makes the model inputs once (grayscale, resized, scaled by the model's sidecar),
so both machines feed the very same tensors: any output difference then comes from the
interpreter's kernels, not from OpenCV's resize. ``run`` runs a TFLite model three ways,
default (XNNPACK delegate), TFLite's own optimized kernels without XNNPACK, and TFLite's
reference kernels, and an ONNX model with ONNX Runtime on the CPU, one thread each.
``stages`` runs edge's own OpenCV steps on each machine: the frame -> model-input resize
(edge.model.preprocess.resize_gray) and the model-size mask -> frame-size upscale
(edge.model.postprocess.to_frame, on a fixed ellipse), to see whether OpenCV differs, plus the
bilinear step alone as cv2.INTER_LINEAR and as cv2.INTER_LINEAR_EXACT (bit-exact by design).
``pipeline`` runs each job (a frame folder and a model) through the installed edge package
exactly as ``edge-run --images`` does (its model opening, pre-processing, interpreter and
decision), and saves per frame the model input, the probabilities the mask is decided on and
the model-size mask: check_arm64_compare then tells identical inputs from identical masks,
and how far from the threshold each differing pixel's probability lies.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

TFLITE_RESOLVERS = ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "BUILTIN_REF")
DEFAULT_SCALE = 1.0 / 255.0  # when a model has no sidecar


def model_scale_offset(model: Path) -> tuple[float, float]:
    side = model.with_suffix(".json")
    if not side.is_file():
        return DEFAULT_SCALE, 0.0
    meta = json.loads(side.read_text())
    return float(meta.get("scale", DEFAULT_SCALE)), float(meta.get("offset", 0.0))


def model_hw(model: Path) -> tuple[int, int]:
    meta = json.loads(model.with_suffix(".json").read_text())
    return tuple(meta["input_hw"])  # type: ignore[return-value]


def make_inputs(frames: Path, model: Path, out: Path, count: int) -> None:
    import cv2

    h, w = model_hw(model)
    scale, offset = model_scale_offset(model)
    arrays = {}
    for path in sorted(frames.glob("*.png"))[:count]:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        small = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
        arrays[path.stem] = (small.astype(np.float32) * scale + offset)[None, :, :, None]
    np.savez(out, **arrays)


def fixed_mask(hw: tuple[int, int]) -> np.ndarray:
    """A 0/1 ellipse at model size, made with numpy only (the same bits on every machine)."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - h / 2) / (h / 4)) ** 2 + ((xx - w / 2) / (w / 3.3)) ** 2 < 1.0
    return inside.astype(np.uint8)


def run_stages(frames: Path, model: Path, out: Path, count: int) -> None:
    import cv2

    from edge.model.postprocess import to_frame
    from edge.model.preprocess import resize_gray

    hw = model_hw(model)
    arrays = {}
    for path in sorted(frames.glob("*.png"))[:count]:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        arrays[f"resize/{path.stem}"] = resize_gray(gray, hw)
        arrays[f"upscale/{path.stem}"] = to_frame(fixed_mask(hw), gray.shape[:2])
        double = (2 * hw[1], 2 * hw[0])  # the bilinear half of resize_gray, both flavours
        arrays[f"cv2_linear/{path.stem}"] = cv2.resize(gray, double, interpolation=cv2.INTER_LINEAR)
        arrays[f"cv2_linear_exact/{path.stem}"] = cv2.resize(
            gray, double, interpolation=cv2.INTER_LINEAR_EXACT)
    np.savez(out, **arrays)


def run_tflite(model: Path, inputs: dict, resolver: str) -> dict:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(str(model), num_threads=1,
                         experimental_op_resolver_type=OpResolverType[resolver])
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    outputs = {}
    for name, x in inputs.items():
        if inp["dtype"] != np.float32:  # quantize with the model's own parameters
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / in_scale + in_zero), info.min, info.max)
        interp.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interp.invoke()
        outputs[f"{resolver}/{name}"] = interp.get_tensor(outp["index"]).copy()
    return outputs


def run_onnx(model: Path, inputs: dict) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), sess_options=opts,
                                providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return {f"CPU/{k}": sess.run(None, {name: x})[0] for k, x in inputs.items()}


def run_model(model: Path, inputs_path: Path, out: Path) -> None:
    inputs = dict(np.load(inputs_path))
    outputs: dict = {}
    if model.suffix == ".onnx":
        outputs.update(run_onnx(model, inputs))
    else:
        for resolver in TFLITE_RESOLVERS:
            outputs.update(run_tflite(model, inputs, resolver))
    np.savez(out, **outputs)


def run_pipeline(jobs_path: Path) -> None:
    """Each job {"frames": DIR, "model": PATH, "out": NPZ}: per frame "NAME/input" (the uint8
    model input), "NAME/prob" (H x W x C decision probabilities), "NAME/mask" (H x W x C, the
    decide() result per class); plus "thresholds" (per class) and "quantized" (raw outputs
    are int8/uint8: masks must match bit for bit)."""
    from edge.io.sources import SourceConfig, open_source
    from edge.loop import open_model
    from edge.model.postprocess import split_outputs
    from edge.runconfig import RunConfig

    jobs = json.loads(jobs_path.read_text())
    for number, job in enumerate(jobs, 1):
        print(f"job {number}/{len(jobs)}: {Path(job['model']).name} on {job['frames']}",
              flush=True)  # the latest line is what check-arm64's progress lines show
        source_cfg = SourceConfig(kind="images", target=job["frames"])
        model = open_model(RunConfig(model=job["model"], source=source_cfg, headless=True),
                           Path(job["model"]))
        cfgs = model.post.class_cfgs
        outs = getattr(model.backend, "_outs", None)
        quantized = outs is not None and all(np.dtype(d["dtype"]) != np.float32 for d in outs)
        arrays = {"thresholds": np.array([c.threshold for c in cfgs], np.float64),
                  "quantized": np.array(quantized)}
        source = open_source(source_cfg)
        model = model.with_source_roi(source.info.roi)
        while (frame := source.read()) is not None:
            gray, x = model.prepare(frame.image)
            probs, presence = split_outputs(model.infer(gray, x), len(cfgs))
            arrays[f"{frame.name}/input"] = gray
            arrays[f"{frame.name}/prob"] = probs.astype(np.float32)
            arrays[f"{frame.name}/mask"] = np.stack(model.post.decide(probs.copy(), presence),
                                                    axis=-1)
        source.close()
        np.savez(job["out"], **arrays)  # not compressed: zlib is slow under emulation


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="check_arm64_probe")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("inputs")
    a.add_argument("frames", type=Path)
    a.add_argument("model", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--count", type=int, default=10)
    c = sub.add_parser("stages")
    c.add_argument("frames", type=Path)
    c.add_argument("model", type=Path)
    c.add_argument("out", type=Path)
    c.add_argument("--count", type=int, default=10)
    b = sub.add_parser("run")
    b.add_argument("model", type=Path)
    b.add_argument("inputs", type=Path)
    b.add_argument("out", type=Path)
    p = sub.add_parser("pipeline")
    p.add_argument("jobs", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "inputs":
        make_inputs(args.frames, args.model, args.out, args.count)
    elif args.cmd == "pipeline":
        run_pipeline(args.jobs)
    elif args.cmd == "stages":
        run_stages(args.frames, args.model, args.out, args.count)
    else:
        run_model(args.model, args.inputs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
