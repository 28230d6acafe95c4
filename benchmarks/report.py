"""Writing results: JSON (atomic), the compare markdown table and the latency-vs-Dice plot.

All writers go through edge.fsutil (temp file + rename), so a killed benchmark never leaves
half a file. matplotlib is imported lazily with the Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path

from edge.fsutil import atomic_path, atomic_write_text, check_writable_file, write_json_atomic

MB = 1e6  # file sizes in the table are decimal megabytes
GIGA = 1e9
PLOT_SIZE_IN = (7.5, 5.0)  # figure width, height in inches
PLOT_DPI = 120
POINTS_PER_INCH = 72.0
MISSING = "-"
FORMAT_MARKERS = {"tflite": "o", "onnx": "s", "keras": "^", "h5": "^"}
LABEL_OFFSET_PT = (6, 4)  # label's lower-left corner from its point, in points
COINCIDENT_PX = 8  # points closer than this on screen share one (stacked) label
LABEL_GAP_PX = 2  # free space kept between two labels
MAX_LABEL_MOVES = 200  # safety stop for the overlap removal
PLOT_MARGIN = 0.15  # room around the points for their labels (share of the data range)
HALF_AXES = 0.5  # labels of points right/above of the middle grow left/down


def prepare_out(path: str | Path) -> Path:
    """Create the parent folder and prove the file can be written there (OutputError)."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # check_writable_file names the folder and the fix
    return check_writable_file(p, "--out")


def write_json(path: str | Path, doc: dict) -> Path:
    p = prepare_out(path)
    write_json_atomic(p, doc)
    return p


def write_text_atomic(path: str | Path, text: str) -> Path:
    return atomic_write_text(prepare_out(path), text)


def _fmt(value, spec: str) -> str:
    return MISSING if value is None else format(value, spec)


def compare_table(doc: dict) -> str:
    """Markdown table: one row per variant (failed ones included, with their error)."""
    threads = doc["config"]["threads"]
    t_cols = [f"p50 ms ({t} thr)" for t in threads]
    head = ["variant", "format", "dtype", "GMAC", "size MB", *t_cols,
            f"FPS ({threads[0]} thr)", "% of model-shaped ceiling", "% of wide ceiling", "Dice",
            "pooled Dice"]
    if doc["config"].get("pipeline"):
        head += ["end-to-end FPS", "non-model share"]
    head.append("status")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in doc["variants"]:
        lines.append("| " + " | ".join(_table_cells(v, threads, doc)) + " |")
    return "\n".join(lines) + "\n"


def _table_cells(v: dict, threads, doc: dict) -> list[str]:
    p50 = v.get("p50_ms", {})
    frac, wide = v.get("fraction_of_ceiling"), v.get("fraction_of_wide_ceiling")
    cells = [v["variant"], v.get("format", MISSING), v.get("dtype") or MISSING,
             _fmt(v["macs"] / GIGA if v.get("macs") else None, ".4f"),
             _fmt(v["size_bytes"] / MB if v.get("size_bytes") else None, ".2f"),
             *[_fmt(p50.get(str(t)), ".3f") for t in threads],
             _fmt(v.get("fps"), ".1f"), _fmt(frac * 100 if frac else None, ".1f"),
             _fmt(wide * 100 if wide else None, ".1f"),
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


CEILING_TITLES = {
    "model": "Model-shaped ceiling (the default model's convolutions, each on its own; "
             "\"% of model-shaped ceiling\" is a model's GMAC/s over it)",
    "wide": "Wide ceiling (one 3x3 conv 64->64 at 128x128: the machine's peak, which thin "
            "layers cannot reach on wide SIMD/matrix units)",
}


def ceiling_lines(ceiling: dict | None) -> list[str]:
    if not ceiling:
        return []
    out = []
    for shape_set, title in CEILING_TITLES.items():
        rows = [r for r in ceiling["results"] if r.get("shape", "wide") == shape_set]
        if not rows:
            continue
        out += [f"{title}:", ""]
        for r in rows:
            what = f"{r['backend']} {r['dtype']} {r['threads']} thread(s)"
            out.append(f"- {what}: {r['gmacs_per_s']:.1f} GMAC/s" if r["status"] == "ok"
                       else f"- {what}: unavailable ({r['error']})")
        out.append("")
    return out


def _points(doc: dict) -> tuple[list[tuple[float, float, str, str]], str]:
    """(x = p50 ms at the first thread count, y, variant, format) per measured variant, and
    the y label: per-image Dice, or GMAC per inference when no accuracy was measured."""
    t0 = str(doc["config"]["threads"][0])
    has_dice = any(v.get("per_image_dice") is not None for v in doc["variants"])
    points = []
    for v in doc["variants"]:
        x = v.get("p50_ms", {}).get(t0)
        y = v.get("per_image_dice") if has_dice else (v["macs"] / GIGA if v.get("macs")
                                                       else None)
        if x is not None and y is not None:
            points.append((x, y, v["variant"], v.get("format", "?")))
    return points, ("per-image Dice" if has_dice else "GMAC per inference")


def _groups(ax, points) -> list[list[tuple]]:
    """Points that land within COINCIDENT_PX of each other on screen, in input order."""
    groups: list[list[tuple]] = []
    centers = []
    for pt in points:
        px = ax.transData.transform((pt[0], pt[1]))
        for g, c in zip(groups, centers, strict=True):
            if abs(px[0] - c[0]) <= COINCIDENT_PX and abs(px[1] - c[1]) <= COINCIDENT_PX:
                g.append(pt)
                break
        else:
            groups.append([pt])
            centers.append(px)
    return groups


def _overlaps(a, b) -> bool:
    return not (a.x1 + LABEL_GAP_PX <= b.x0 or b.x1 + LABEL_GAP_PX <= a.x0
                or a.y1 + LABEL_GAP_PX <= b.y0 or b.y1 + LABEL_GAP_PX <= a.y0)


def label_box(annotation, renderer):
    """The text's own box in display pixels (an Annotation's extent includes its line)."""
    from matplotlib.text import Text

    annotation.update_positions(renderer)
    return Text.get_window_extent(annotation, renderer)


def _push_apart(fig, texts) -> None:
    """Move each label down (in points) until it overlaps no label placed before it."""
    renderer = fig.canvas.get_renderer()
    placed = []
    px_to_pt = POINTS_PER_INCH / fig.dpi
    for text in texts:
        for _ in range(MAX_LABEL_MOVES):
            box = label_box(text, renderer)
            hit = next((b for b in placed if _overlaps(box, b)), None)
            if hit is None:
                break
            dx, dy = text.xyann
            text.xyann = (dx, dy - (box.y1 - hit.y0 + LABEL_GAP_PX) * px_to_pt)
        placed.append(label_box(text, renderer))


def draw_latency_vs_dice(doc: dict):
    """The figure: one marker per measured variant, p50 latency (first thread count) vs Dice.
    Variants on the same spot share one label listing them all; labels never overlap (moved
    apart with a thin line back to their point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, ylabel = _points(doc)
    fig, ax = plt.subplots(figsize=PLOT_SIZE_IN, dpi=PLOT_DPI)
    for fmt in dict.fromkeys(p[3] for p in points):
        mine = [p for p in points if p[3] == fmt]
        ax.scatter([p[0] for p in mine], [p[1] for p in mine], s=40, label=fmt,
                   marker=FORMAT_MARKERS.get(fmt, "o"))
    if points:
        ax.legend(title="format", fontsize=8)
    t0 = doc["config"]["threads"][0]
    ax.set_xlabel(f"p50 latency, ms ({t0} thread)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"latency vs {ylabel.split(',')[0]} - {doc['machine']['cpu_model']}")
    ax.grid(True, alpha=0.3)
    ax.margins(PLOT_MARGIN)
    fig.tight_layout()
    texts = [_label(ax, group) for group in _groups(ax, points)]
    _push_apart(fig, texts)
    return fig


def _label(ax, group):
    """One label for a group of coincident points, growing away from the nearest edges."""
    fx, fy = ax.transAxes.inverted().transform(ax.transData.transform(group[0][:2]))
    right, top = fx > HALF_AXES, fy > HALF_AXES
    dx, dy = LABEL_OFFSET_PT
    return ax.annotate("\n".join(p[2] for p in group), group[0][:2],
                       textcoords="offset points",
                       xytext=(-dx if right else dx, -dy if top else dy), fontsize=8,
                       ha="right" if right else "left", va="top" if top else "bottom",
                       arrowprops={"arrowstyle": "-", "lw": 0.5, "alpha": 0.6})


def plot_latency_vs_dice(doc: dict, png_path: str | Path) -> Path:
    """draw_latency_vs_dice, written atomically as a PNG."""
    import matplotlib.pyplot as plt

    fig = draw_latency_vs_dice(doc)
    p = prepare_out(png_path)
    try:
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=PLOT_DPI, format="png")
    finally:
        plt.close(fig)
    return p
