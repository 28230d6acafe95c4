"""The /app/ site: which URL serves which file, and its export as a static folder.

The page's own files live here (edge/view/web/app/); the runtime (LiteRT.js JS + wasm) comes from
the npm registry at set-up time (`make web-runtime` or `edge-run --fetch-web-runtime` ->
edge/view/web/vendor/, gitignored, packaged into a wheel built after it); the model is the packaged
web variant and its sidecar; the demo clip is rendered from the phantom (edge/view/web/demo.py),
never committed. The map is built once, from this fixed list: a request can only ever name one
of these files.

    python -m edge.view.web.site DIR      (same as edge-run --export-web DIR)
"""

from __future__ import annotations

import atexit
import functools
import shutil
import sys
import tempfile
from pathlib import Path

from edge.errors import OutputError, UserInputError
from edge.fsutil import write_json_atomic
from edge.log import note, say
from edge.model.metadata import load_meta, meta_to_dict

HERE = Path(__file__).resolve().parent
APP_DIR = HERE / "app"
VENDOR_DIR = HERE / "vendor" / "node_modules" / "@litertjs"
MODELS_DIR = HERE.parents[1] / "models"
DEFAULT_MODEL = MODELS_DIR / "nerve_default_web.tflite"
# LiteRT.js picks one of these by browser features (relaxed SIMD, threads); JSPI is not used.
WASM_VARIANTS = ("litert_wasm_internal", "litert_wasm_compat_internal",
                 "litert_wasm_threaded_internal")
# A source checkout (Makefile beside the package) has `make web-runtime`; an installed kit has
# edge-run's own fetch (edge/view/web/fetch.py, no npm needed).
_CHECKOUT = (HERE.parents[2] / "Makefile").is_file()
RUNTIME_MISSING = ("the in-browser runtime is not installed: run `edge-run --fetch-web-runtime` "
                   "(downloads the pinned LiteRT.js from the npm registry"
                   + ("; or `make web-runtime` in this checkout)" if _CHECKOUT else ")"))
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".json": "application/json", ".webmanifest": "application/manifest+json",
         ".wasm": "application/wasm", ".tflite": "application/octet-stream",
         ".png": "image/png", ".jpg": "image/jpeg", ".css": "text/css; charset=utf-8"}


def runtime_files() -> dict[str, Path]:
    """Site path -> vendored runtime file ({} before `make web-runtime` / --fetch-web-runtime)."""
    core, utils = VENDOR_DIR / "core", VENDOR_DIR / "wasm-utils"
    files = {"runtime/litert.js": core / "dist" / "index.js",
             "runtime/wasm-utils.js": utils / "dist" / "index.js"}
    # Their package.json files name the licence (Apache-2.0) and source of what is redistributed.
    files["runtime/litertjs-core.package.json"] = core / "package.json"
    files["runtime/litertjs-wasm-utils.package.json"] = utils / "package.json"
    for name in WASM_VARIANTS:
        for suffix in (".js", ".wasm"):
            files[f"runtime/wasm/{name}{suffix}"] = core / "wasm" / f"{name}{suffix}"
    return files if all(p.is_file() for p in files.values()) else {}


def site_files(model: str | Path | None = None) -> dict[str, Path]:
    """Site path (relative to /app/) -> file on disk: page, icons, runtime, model, sidecar,
    and the demo clip (rendered from the phantom once per process, edge/view/web/demo.py)."""
    from edge.view.web.demo import clip_files

    model = Path(model) if model else DEFAULT_MODEL
    if model.suffix != ".tflite" or not model.is_file():
        raise UserInputError(f"web model {model}: not a .tflite file; pass the web variant "
                             "(edge-convert --formats web)")
    sidecar = model.with_suffix(".json")
    if not sidecar.is_file():
        raise UserInputError(f"web model {model}: its sidecar {sidecar.name} is missing; "
                             "copy it from the edge-convert output")
    fmt = load_meta(model).extra.get("format")
    if fmt not in (None, "web"):
        raise UserInputError(f"web model {model}: a {fmt!r} model; the browser runs the web "
                             "variant only (edge-convert --formats web)")
    files = {p.name: p for p in sorted(APP_DIR.iterdir()) if p.suffix in TYPES}
    files.update(runtime_files())
    files["model/nerve.tflite"] = model
    files["model/nerve.json"] = settings_file(model)
    files.update(clip_files())
    return files


def web_settings(model: Path) -> dict:
    """What the browser runner reads (model/nerve.json): the model's settings resolved by
    edge.model.settings exactly as edge-run resolves them (ROI, thresholds, classes with
    their colours), plus the model's name, version and sidecar. nerve.js has no rules of its
    own: it uses these values as they are."""
    from edge.model.segmodel import SegModel

    opened = SegModel.open(model, allow_sha256_mismatch=True)
    return {**opened.settings.to_dict(), "name": opened.meta.name,
            "version": opened.meta.version, "sidecar": meta_to_dict(opened.meta)}


def settings_file(model: Path) -> Path:
    """web_settings(model) written once per process and sidecar version into a temporary
    folder (removed at exit), like the demo clip."""
    side = model.with_suffix(".json").stat()
    return _settings_file(model.resolve(), side.st_mtime_ns, side.st_size)


@functools.cache
def _settings_file(model: Path, *_sidecar_version) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="nerve-edge-web-"))
    atexit.register(shutil.rmtree, folder, True)
    return write_json_atomic(folder / "nerve.json", web_settings(model))


def content_type(site_path: str) -> str:
    return TYPES.get(Path(site_path).suffix, "application/octet-stream")


def export_web(out_dir: str | Path, model: str | Path | None = None) -> Path:
    """Copy the whole /app/ site into out_dir (created; must be empty or absent)."""
    files = site_files(model)
    if not runtime_files():
        raise UserInputError(f"--export-web: {RUNTIME_MISSING}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"--export-web {out}: exists and is not an empty folder; "
                          "choose a new folder")
    for rel, src in files.items():
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        note("usage: python -m edge.view.web.site DIR [MODEL.tflite]")
        return 2
    try:
        out = export_web(*args)
    except (UserInputError, OutputError) as err:
        note(f"export-web: error: {err}")
        return 2
    say(f"export-web: wrote {out} (serve it over HTTPS with COOP/COEP headers; "
          "see docs/tablet.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
