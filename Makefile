# The two set-up commands of a fresh machine (see README):
#   make run    the main job: edge-run on the built-in phantom with the shipped model, headless
#   make test   the whole test suite (tests/edge in a venv WITHOUT TensorFlow, the rest with it)
# Each makes its own virtual environment and installs what it needs.

PY ?= python3
VENV_EDGE := .venv-edge
VENV := .venv
PIP_FLAGS := -q --disable-pip-version-check

.PHONY: run test test-edge test-dicom test-rest check-arm64 lint venv venv-edge browser orthanc labelstudio web-runtime clean

$(VENV_EDGE)/.installed: pyproject.toml
	$(PY) -m venv $(VENV_EDGE)
	$(VENV_EDGE)/bin/pip install $(PIP_FLAGS) -e ".[onnx,dev,dicom,label]"
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[convert,onnx,bench,dev,fleet,label]"
	touch $@

venv-edge: $(VENV_EDGE)/.installed
venv: $(VENV)/.installed

# The in-browser runner's runtime (LiteRT.js, JS + wasm, ~38 MB) comes from the npm registry at
# set-up time, pinned, into a gitignored folder; edge-run --serve serves it at /app/ (no CDN).
LITERTJS_VERSION := 2.5.3
WEB_VENDOR := edge/view/web/vendor
$(WEB_VENDOR)/.installed-$(LITERTJS_VERSION):
	@if command -v npm >/dev/null; then \
	  npm install --prefix $(WEB_VENDOR) --no-save --no-package-lock --ignore-scripts --no-audit \
	    --no-fund @litertjs/core@$(LITERTJS_VERSION) @litertjs/wasm-utils@$(LITERTJS_VERSION) \
	  && touch $@; \
	else echo "web-runtime: npm not found (apt-get install npm); the /app/ runner and its tests are skipped"; fi

web-runtime: $(WEB_VENDOR)/.installed-$(LITERTJS_VERSION)

# 1500 frames: ~5 s at the ~300 FPS of the shipped int8 model on a current x86 core (300
# frames took ~1 s, so warm-up and one-off stalls weighed on the figure); about a minute on a
# Pi-class board at 20-30 FPS.
RUN_FRAMES := 1500

run: $(VENV_EDGE)/.installed web-runtime
	$(VENV_EDGE)/bin/edge-run --source phantom --headless --max-frames $(RUN_FRAMES)

# Debian's Chromium + ChromeDriver drive the web view's end-to-end test (tests/edge/test_serve_browser.py);
# certutil (libnss3-tools) makes the NSS database through which Chromium trusts the board's
# CA in the HTTPS test (tests/edge/test_serve_tls_browser.py).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v certutil >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver libnss3-tools >/dev/null) || \
	  echo "could not install chromium or certutil; the browser tests will skip"

# Debian's Orthanc PACS (+ DICOMweb plugin): the DICOM tests start it on loopback themselves.
orthanc:
	@command -v Orthanc >/dev/null && test -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so || \
	  (apt-get update -qq && apt-get install -y -qq orthanc orthanc-dicomweb >/dev/null) || \
	  echo "could not install orthanc; the PACS tests will skip"

# Label Studio (the annotation tool of docs/clinic.md) in a venv of its own: ~1 GB, about 80 s
# to install (measured on the 2-core test machine). tests/label start it on loopback with SQLite
# and a temporary data folder, no internet; they skip when this venv is missing.
LABEL_STUDIO_VERSION := 1.23.2
VENV_LS := .venv-labelstudio
$(VENV_LS)/.installed-$(LABEL_STUDIO_VERSION):
	@echo "labelstudio: installing Label Studio $(LABEL_STUDIO_VERSION) into $(VENV_LS) (~1 GB, 1-2 minutes)"
	@($(PY) -m venv $(VENV_LS) && \
	  $(VENV_LS)/bin/pip install $(PIP_FLAGS) label-studio==$(LABEL_STUDIO_VERSION) && \
	  touch $@) || echo "could not install Label Studio; the Label Studio tests will skip"

labelstudio: $(VENV_LS)/.installed-$(LABEL_STUDIO_VERSION)

test-dicom: $(VENV_EDGE)/.installed orthanc
	$(VENV_EDGE)/bin/python -m pytest -q tests/dicom

test-edge: $(VENV_EDGE)/.installed browser web-runtime
	$(VENV_EDGE)/bin/python -m pytest -q tests/edge

# tests/docs runs the documented edge-run lines from $(VENV_EDGE) (the [dicom] extra is there)
# and `edge-run --export-web` needs the web runtime; tests/label needs Label Studio.
test-rest: $(VENV)/.installed $(VENV_EDGE)/.installed web-runtime labelstudio
	$(VENV)/bin/python -m pytest -q tests --ignore=tests/edge --ignore=tests/dicom

# The device package on an emulated Raspberry Pi OS (Debian bookworm arm64, qemu-user): builds
# a root once (cached in ~/.cache/nerve-edge, a progress line at least every 30 s), installs
# this tree there as docs/deploy-pi.md does, compares its masks with x86's on phantom frames
# (and real ones with NERVE_EDGE_DATA or ARM64_DATA set): identical for int8 and web models,
# within 1e-5 of the threshold for float ones. Skips with one line where this machine cannot
# run arm64 binaries (not root, no qemu, no binfmt_misc). See docs/deploy-pi.md.
# The report goes to ARM64_REPORT (not a tracked file); to rewrite the recorded result:
#   make check-arm64 ARM64_REPORT=benchmarks/results/arm64.json
ARM64_REPORT ?= $(HOME)/.cache/nerve-edge/arm64-report.json
ARM64_DATA ?=
check-arm64: $(VENV_EDGE)/.installed
	$(VENV_EDGE)/bin/python scripts/check_arm64.py --report $(ARM64_REPORT) $(if $(ARM64_DATA),--data $(ARM64_DATA))

# tests/boards/test_arm64_run.py runs check-arm64 inside test-rest, on the suite's real frames.
test: test-edge test-dicom test-rest

lint: $(VENV_EDGE)/.installed
	$(VENV_EDGE)/bin/ruff check .

clean:
	rm -rf $(VENV) $(VENV_EDGE) $(VENV_LS) .pytest_cache $(WEB_VENDOR)
