"""Writing results: JSON (atomic), the compare markdown table and the latency-vs-Dice plot.

All writers go through a temp file + rename, so a killed benchmark never leaves half a file.
matplotlib is imported lazily with the Agg backend (no display needed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edge.errors import OutputError
from edge.metadata import write_json_atomic

MB = 1e6  # file sizes in the table are decimal megabytes
GIGA = 1e9
PLOT_SIZE_IN = (7.5, 5.0)  # figure width, height in inches
PLOT_DPI = 120
MISSING = "-"
FORMAT_MARKERS = {"tflite": "o", "onnx": "s", "keras": "^", "h5": "^"}
LABEL_OFFSETS = ((5, 4), (5, -11))  # points


def prepare_out(path: str | Path) -> Path:
    """Create the parent folder; raise OutputError naming the path when it cannot be."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--out {p}: cannot create {p.parent} ({exc.strerror}); "
                          "choose a writable folder") from exc
    if not os.access(p.parent, os.W_OK):
        raise OutputError(f"--out {p}: {p.parent} is not writable; choose a writable folder")
    return p


def write_json(path: str | Path, doc: dict) -> Path:
    p = prepare_out(path)
    write_json_atomic(p, doc)
    return p


def write_text_atomic(path: str | Path, text: str) -> Path:
    p = prepare_out(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, p)
    return p


def _fmt(value, spec: str) -> str:
    return MISSING if value is None else format(value, spec)


def compare_table(doc: dict) -> str:
    """Markdown table: one row per variant (failed ones included, with their error)."""
    threads = doc["config"]["threads"]
    t_cols = [f"p50 ms ({t} thr)" for t in threads]
    head = ["variant", "format", "dtype", "GMAC", "size MB", *t_cols,
            f"FPS ({threads[0]} thr)", "% of ceiling", "Dice", "pooled Dice"]
    if doc["config"].get("pipeline"):
        head += ["end-to-end FPS", "non-model share"]
    head.append("status")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in doc["variants"]:
        lines.append("| " + " | ".join(_table_cells(v, threads, doc)) + " |")
    return "\n".join(lines) + "\n"


def _table_cells(v: dict, threads, doc: dict) -> list[str]:
    p50 = v.get("p50_ms", {})
    frac = v.get("fraction_of_ceiling")
    cells = [v["variant"], v.get("format", MISSING), v.get("dtype") or MISSING,
             _fmt(v["macs"] / GIGA if v.get("macs") else None, ".4f"),
             _fmt(v["size_bytes"] / MB if v.get("size_bytes") else None, ".2f"),
             *[_fmt(p50.get(str(t)), ".3f") for t in threads],
             _fmt(v.get("fps"), ".1f"), _fmt(frac * 100 if frac else None, ".1f"),
             _fmt(v.get("per_image_dice"), ".4f"), _fmt(v.get("pooled_dice"), ".4f")]
    if doc["config"].get("pipeline"):
        share = v.get("non_model_share")
        cells += [_fmt(v.get("pipeline_fps"), ".1f"), _fmt(share * 100 if share else None,
                                                           ".1f") + ("%" if share else "")]
    error = v.get("error")
    cells.append("ok" if v["status"] == "ok" else
                 "FAILED: " + str(error).replace("|", "/").replace("\n", " ")[:200])
    return cells


def compare_markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = [
        "# edge-bench compare", "",
        f"Machine: {m['cpu_model']} ({m['arch']}, {m['usable_cores']} usable cores; "
        f"ISA {', '.join(m['isa_flags']) or 'n/a'}). Runtimes: "
        + ", ".join(f"{k} {v}" for k, v in m["runtimes"].items()) + ".", "",
        f"Latency: median of {doc['config']['repeats']} repeats of {doc['config']['runs']} "
        f"timed runs after {doc['config']['warmup']} warm-up runs, batch 1.",
    ]
    if doc.get("dataset"):
        d = doc["dataset"]
        lines.append(f"Accuracy: {d['n_images']} frames of {d['data_dir']} "
                     f"(subjects {', '.join(d['subjects'])}).")
    lines += ["", compare_table(doc)]
    lines += ceiling_lines(doc.get("ceiling"))
    return "\n".join(lines)


def ceiling_lines(ceiling: dict | None) -> list[str]:
    if not ceiling:
        return []
    out = ["Ceiling (3x3 conv 64->64 at 128x128):", ""]
    for r in ceiling["results"]:
        what = f"{r['backend']} {r['dtype']} {r['threads']} thread(s)"
        out.append(f"- {what}: {r['gmacs_per_s']:.1f} GMAC/s" if r["status"] == "ok"
                   else f"- {what}: unavailable ({r['error']})")
    return [*out, ""]


def plot_latency_vs_dice(doc: dict, png_path: str | Path) -> Path:
    """One labeled point per measured variant: p50 latency (first thread count) vs Dice
    (or vs GMAC per inference when no accuracy was measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = str(doc["config"]["threads"][0])
    has_dice = any(v.get("per_image_dice") is not None for v in doc["variants"])
    key, ylabel = (("per_image_dice", "per-image Dice") if has_dice
                   else ("gmac", "GMAC per inference"))
    fig, ax = plt.subplots(figsize=PLOT_SIZE_IN)
    labelled = set()
    for i, v in enumerate(doc["variants"]):
        x = v.get("p50_ms", {}).get(t0)
        y = v.get(key) if has_dice else (v["macs"] / GIGA if v.get("macs") else None)
        if x is None or y is None:
            continue
        fmt = v.get("format", "?")
        ax.scatter([x], [y], marker=FORMAT_MARKERS.get(fmt, "o"), s=40,
                   label=None if fmt in labelled else fmt)
        labelled.add(fmt)
        # alternate label offsets so neighbouring points stay readable
        ax.annotate(v["variant"], (x, y), textcoords="offset points",
                    xytext=LABEL_OFFSETS[i % len(LABEL_OFFSETS)], fontsize=8)
    if labelled:
        ax.legend(title="format", fontsize=8)
    ax.set_xlabel(f"p50 latency, ms ({t0} thread)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"latency vs {ylabel.split(',')[0]} - {doc['machine']['cpu_model']}")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    p = prepare_out(png_path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=PLOT_DPI, format="png")
        os.replace(tmp, p)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p
