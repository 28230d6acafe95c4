# The two set-up commands of a fresh machine (see README):
#   make run    the main job: edge-run on the built-in phantom with the shipped model, headless
#   make test   the whole test suite (tests/edge in a venv WITHOUT TensorFlow, the rest with it)
# Each makes its own virtual environment and installs what it needs.

PY ?= python3
VENV_EDGE := .venv-edge
VENV := .venv
PIP_FLAGS := -q --disable-pip-version-check

.PHONY: run test test-edge test-rest check-arm64 lint venv venv-edge browser clean

$(VENV_EDGE)/.installed: pyproject.toml
	$(PY) -m venv $(VENV_EDGE)
	$(VENV_EDGE)/bin/pip install $(PIP_FLAGS) -e ".[onnx,dev]"
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[convert,onnx,bench,dev]"
	touch $@

venv-edge: $(VENV_EDGE)/.installed
venv: $(VENV)/.installed

run: $(VENV_EDGE)/.installed
	$(VENV_EDGE)/bin/edge-run --source phantom --headless --max-frames 300

# Debian's Chromium + ChromeDriver drive the web view's end-to-end test (tests/edge/test_serve_browser.py).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	  echo "could not install chromium; the browser test will skip"

test-edge: $(VENV_EDGE)/.installed browser
	$(VENV_EDGE)/bin/python -m pytest -q tests/edge

test-rest: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q tests --ignore=tests/edge

# The device package on an emulated Raspberry Pi OS (Debian bookworm arm64, qemu-user): builds
# a root once (cached in ~/.cache/nerve-edge), pip-installs this tree there, compares its masks
# with x86's (fails below 0.99 mean Dice). Skips with one line where this machine cannot run
# arm64 binaries (not root, no qemu, no binfmt_misc). See docs/deploy-pi.md.
ARM64_REPORT ?= benchmarks/results/arm64.json
check-arm64: $(VENV_EDGE)/.installed
	$(VENV_EDGE)/bin/python scripts/check_arm64.py --report $(ARM64_REPORT)

# check-arm64 last (the longest); its report goes to the cache, not into the tree.
test: test-edge test-rest
	$(MAKE) check-arm64 ARM64_REPORT=$(HOME)/.cache/nerve-edge/arm64-last.json

lint: $(VENV_EDGE)/.installed
	$(VENV_EDGE)/bin/ruff check .

clean:
	rm -rf $(VENV) $(VENV_EDGE) .pytest_cache
