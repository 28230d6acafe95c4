"""Mask agreement between the arm64 and the x86 runs of `make check-arm64` (numpy + OpenCV).

The verdict (``compare_model`` + ``verdict``), per model and frame set: the model inputs edge
makes must be bit-identical; an int8 (and web) model's masks must be bit-identical; a float
model's raw outputs differ in the last bits across ISAs (summation order), so its masks may
differ only where the probability lies within THRESHOLD_TOL of the threshold. Dice (mean, min)
and where differing pixels lie (on the x86 mask's outline or not) are reported alongside.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

THRESHOLD_TOL = 1e-5  # a float model's mask may differ only where |prob - threshold| <= this
OUTLINE_PX = 2  # a differing pixel this close to the x86 mask's outline counts as "outline"

# What is known about the kernels, quoted next to the measured figures (see ``explain``).
KERNEL_NOTES = {
    "tflite": "edge-run runs int8 TFLite models through XNNPACK (NEON on arm64, AVX2/AVX-512 "
              "on x86); TFLite's own optimized kernels (ruy/gemmlowp) are used without it",
    "onnx": "ONNX Runtime's float32 MLAS kernels (NEON vs AVX2/FMA) sum in a different order, "
            "so float outputs differ in the last bits",
    "opencv": "OpenCV's uint8 cv2.INTER_LINEAR resize has per-ISA SIMD code that rounds "
              "differently; cv2.INTER_LINEAR_EXACT is bit-exact by design",
}


def _stage_line(name: str, entry: dict | None) -> str:
    if entry is None:
        return f"{name}: not measured"
    return (f"{name}: {entry['bit_identical']}/{entry['outputs']} bit-identical, max gap "
            f"{entry['max_abs_diff']:g}")


DEFAULT_KERNELS = {"tflite": "AUTO", "onnx": "CPU"}  # what edge-run uses


def _identical(entry: dict | None) -> bool | None:
    return None if entry is None else entry["bit_identical"] == entry["outputs"]


def conclusion(model: str, raw: dict) -> str:
    """One sentence: where, by the probe, the arm64 and x86 masks part ways."""
    kernels = DEFAULT_KERNELS[model_kind(model)]
    interp = raw.get(model, {}).get(kernels)
    cv = raw.get("opencv", {})
    same_model = _identical(interp)
    same_cv = all(_identical(cv.get(k)) for k in ("resize", "upscale"))
    if same_model is None or not cv:
        return "not probed"
    if same_model and not same_cv:
        return (f"the model's kernels ({kernels}) give bit-identical outputs on identical "
                "inputs; the masks differ through edge's OpenCV cv2.INTER_LINEAR resizes "
                "(frame -> model input, mask -> frame), which round differently on aarch64 "
                "and x86, moving outline pixels")
    if not same_model and not same_cv:
        return (f"both differ: the model's kernels ({kernels}, max gap "
                f"{interp['max_abs_diff']:g}) and edge's OpenCV cv2.INTER_LINEAR resizes")
    if not same_model:
        return (f"the model's kernels ({kernels}) differ (max gap {interp['max_abs_diff']:g}); "
                "edge's OpenCV steps are bit-identical")
    return "kernels and OpenCV steps are bit-identical on the probe frames"


def explain(model: str, raw: dict) -> list[str]:
    """Measured lines saying where arm64 and x86 part ways for ``model``: its interpreter's
    raw outputs on identical inputs, and edge's OpenCV steps around it."""
    kind, mine, cv = model_kind(model), raw.get(model, {}), raw.get("opencv", {})
    lines = [f"conclusion: {conclusion(model, raw)}.", KERNEL_NOTES[kind] + "."]
    for kernels, entry in sorted(mine.items()):
        lines.append(_stage_line(f"raw model outputs on identical inputs, {kernels}", entry))
    lines.append(KERNEL_NOTES["opencv"] + ".")
    for stage in ("resize", "upscale", "cv2_linear", "cv2_linear_exact"):
        lines.append(_stage_line(f"OpenCV {stage}", cv.get(stage)))
    return lines


def read_mask(path: Path) -> np.ndarray:
    """The saved mask as written: 0/255 for a nerve-only model, class ids for a multi-class one."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ValueError(f"{path}: not a readable mask PNG")
    return mask


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A and B| / (|A| + |B|) of two boolean masks; two empty masks agree fully (1.0)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def label_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Dice over the labels either mask holds (255 for a 0/255 mask, each class id of a
    class-id mask); 1.0 when both are empty."""
    labels = sorted((set(np.unique(a)) | set(np.unique(b))) - {0})
    if not labels:
        return 1.0
    return float(np.mean([dice(a == v, b == v) for v in labels]))


def outline(mask: np.ndarray, px: int = OUTLINE_PX) -> np.ndarray:
    """Pixels within ``px`` of the mask's outline (a morphological gradient)."""
    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    grad = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, kernel)
    return grad > 0


def compare_dirs(x86_dir: Path, arm_dir: Path) -> dict:
    """Per-model agreement over the masks x86 wrote (a mask arm64 lacks counts as Dice 0)."""
    names = sorted(p.name for p in x86_dir.glob("*.png"))
    scores, identical, diff_px, outline_px, missing = [], 0, 0, 0, []
    for name in names:
        ref = read_mask(x86_dir / name)
        if not (arm_dir / name).is_file():
            missing.append(name)
            scores.append(0.0)
            continue
        got = read_mask(arm_dir / name)
        scores.append(label_dice(ref, got))
        identical += int(np.array_equal(ref, got))
        differ = ref != got
        diff_px += int(differ.sum())
        outline_px += int((differ & outline(ref > 0)).sum())
    return {
        "frames": len(names),
        "mean_dice": round(float(np.mean(scores)), 5) if scores else None,
        "min_dice": round(float(np.min(scores)), 5) if scores else None,
        "bit_identical": identical,
        "differing_pixels": diff_px,
        "differing_pixels_on_outline": outline_px,
        "missing_on_arm64": missing,
    }


def model_kind(model_name: str) -> str:
    return "onnx" if model_name.endswith(".onnx") else "tflite"


def compare_pipeline(x86_npz: Path, arm_npz: Path) -> dict:
    """The pipeline probe's per-frame model inputs, probabilities and model-size masks, x86 vs
    arm64: identical inputs, identical model-size masks, and for every differing mask pixel
    its distance to the threshold (the larger of the two machines' probabilities)."""
    ref, got = np.load(x86_npz), np.load(arm_npz)
    thresholds = ref["thresholds"]
    names = sorted(k[: -len("/input")] for k in ref.files if k.endswith("/input"))
    same_inputs, same_masks, diff_px, worst, missing = 0, 0, 0, 0.0, []
    for name in names:
        if f"{name}/input" not in got.files:
            missing.append(name)
            continue
        same_inputs += int(np.array_equal(ref[f"{name}/input"], got[f"{name}/input"]))
        differ = ref[f"{name}/mask"] != got[f"{name}/mask"]
        same_masks += int(not differ.any())
        if differ.any():
            diff_px += int(differ.sum())
            dist = np.maximum(np.abs(ref[f"{name}/prob"] - thresholds),
                              np.abs(got[f"{name}/prob"] - thresholds))
            worst = max(worst, float(dist[differ].max()))
    return {"frames": len(names), "quantized": bool(ref["quantized"]),
            "identical_inputs": same_inputs, "identical_model_masks": same_masks,
            "differing_model_pixels": diff_px,
            "max_threshold_distance": worst if diff_px else None,
            "missing_on_arm64": missing}


def compare_model(masks_x86: Path, masks_arm: Path, x86_npz: Path, arm_npz: Path) -> dict:
    """One model on one frame set: edge-run's saved masks (frame size) and the pipeline
    probe's inputs and model-size decisions."""
    entry = compare_dirs(masks_x86, masks_arm)
    probe = compare_pipeline(x86_npz, arm_npz)
    entry.update({k: v for k, v in probe.items() if k not in ("frames", "missing_on_arm64")})
    entry["probe_frames"] = probe["frames"]
    entry["missing_on_arm64"] = sorted(set(entry["missing_on_arm64"]) |
                                       {f"{n} (probe)" for n in probe["missing_on_arm64"]})
    return entry


def verdict(entry: dict) -> tuple[bool, str]:
    """(passed, one line) for one model on one frame set (see the module docstring)."""
    n = entry["frames"]
    if not n or entry.get("probe_frames") != n:
        return False, (f"{n} masks written on x86, {entry.get('probe_frames')} frames probed: "
                       f"nothing (or not the same frames) to compare")
    if entry["missing_on_arm64"]:
        return False, f"missing on arm64: {', '.join(entry['missing_on_arm64'][:3])}"
    counts = (f"{entry['identical_inputs']}/{n} identical inputs, {entry['bit_identical']}/{n} "
              f"identical masks, {entry['differing_pixels']} differing pixels")
    if entry["identical_inputs"] < n:
        return False, f"{counts}: the model inputs differ (edge's resize is not exact)"
    if entry["quantized"]:
        if entry["bit_identical"] < n:
            return False, f"{counts}: an int8 model's masks must be bit-identical"
        return True, counts
    worst = entry["max_threshold_distance"]
    far = f", max distance to the threshold {worst:.2e}" if worst is not None else ""
    if worst is not None and worst > THRESHOLD_TOL:
        return False, (f"{counts}{far} > {THRESHOLD_TOL:g}: a float model's masks may differ "
                       f"only at probabilities within {THRESHOLD_TOL:g} of the threshold")
    if entry["bit_identical"] < entry["identical_model_masks"]:
        return False, (f"{counts}: masks identical at model size differ at frame size (edge's "
                       f"mask upscale is not exact)")
    return True, counts + far


def compare_outputs(x86_npz: Path, arm_npz: Path) -> dict:
    """Raw outputs on identical inputs, per kernel set ("AUTO/frame" keys -> "AUTO"): how many
    output tensors are bit-identical, the share of elements that differ, the largest gap (in
    int8 steps for a quantized output)."""
    ref, got = np.load(x86_npz), np.load(arm_npz)
    by_kernels: dict[str, dict] = {}
    for key in sorted(ref.files):
        kernels = key.split("/", 1)[0]
        entry = by_kernels.setdefault(kernels, {"outputs": 0, "bit_identical": 0,
                                                "elements": 0, "elements_differing": 0,
                                                "max_abs_diff": 0.0})
        a = ref[key].astype(np.float64)
        b = got[key].astype(np.float64) if key in got.files else np.full_like(a, np.nan)
        differ = ~(a == b)
        entry["outputs"] += 1
        entry["bit_identical"] += int(not differ.any())
        entry["elements"] += int(a.size)
        entry["elements_differing"] += int(differ.sum())
        gap = float(np.nanmax(np.abs(a - b))) if np.isfinite(b).any() else float("inf")
        entry["max_abs_diff"] = max(entry["max_abs_diff"], gap)
    for entry in by_kernels.values():
        entry["elements_differing_fraction"] = round(
            entry["elements_differing"] / max(entry["elements"], 1), 6)
    return by_kernels
