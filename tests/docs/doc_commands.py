"""The commands shown in README.md and docs/*.md, as the test runs them.

``collect()`` reads every fenced code block (except json/yaml/js ones and the box-drawing
diagrams), joins ``\\`` continuation lines, drops ``#`` comments and a leading ``$ `` prompt, cuts
a line at ``;`` / ``&&`` / ``|`` (``...; wait`` in a shell loop), takes leading ``VAR=value``
words as the environment, and keeps every line whose first word is (a path ending in)
``edge-run``, ``edge-train``, ``edge-convert``, ``edge-bench`` or ``make``.

``as_run()`` turns one into the argv the test runs, by the documented mapping below:
PLACEHOLDERS (paths the docs assume: the stand-ins of tests/docs/doc_workspace.py, or a run folder
an earlier documented command trained), SHRINK (long work made short: one epoch, a few timed
runs) and the network mapping (``--serve`` on any free port and with ``--no-mdns``, a PACS that is
not there: a closed local port).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("edge-run", "edge-train", "edge-convert", "edge-bench", "edge-deploy", "make")
# Docs in the order a user follows them: data before training, training before conversion,
# conversion before benchmarks (later commands use what earlier ones wrote). A doc not named
# here is read after these, in name order, so a new doc is never left out.
DOC_ORDER = ("README.md", "docs/data.md", "docs/train.md", "docs/convert.md", "docs/bench.md",
             "docs/edge.md", "docs/dicom.md", "docs/serve.md", "docs/tablet.md",
             "docs/deploy-pi.md", "docs/architecture.md")
NOT_SHELL = {"json", "yaml", "yml", "js", "javascript", "html", "css", "python", "text"}
DIAGRAM = re.compile("[\u2500-\u257f\u25b2-\u25bc\u25ba\u2192]")  # box drawing, arrows
FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")
CUT = (";", "&&", "||", "|", "&")
ENV_WORD = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class DocCommand:
    doc: str  # path relative to the repository
    line: int  # first line of the command in the doc
    env: tuple[str, ...]  # leading VAR=value words
    words: tuple[str, ...]  # the command as shlex splits it (comments dropped)

    @property
    def text(self) -> str:
        """The command as the docs give it (one line, comments dropped): the tables' key."""
        return " ".join((*self.env, *self.words))

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def doc_files() -> list[Path]:
    named = [ROOT / d for d in DOC_ORDER if (ROOT / d).is_file()]
    rest = sorted(p for p in (ROOT / "docs").glob("*.md") if p not in named)
    return named + rest


def _blocks(text: str):
    """(language, first line number, lines) of each fenced code block."""
    lang, start, lines = None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if fence and lang is None:
            lang, start, lines = fence.group(1).lower(), number + 1, []
        elif line.strip().startswith("```") and lang is not None:
            yield lang, start, lines
            lang = None
        elif lang is not None:
            lines.append(line)


def _logical_lines(start: int, lines: list[str]):
    """(line number, text) with backslash continuations joined."""
    buf, first = "", start
    for number, line in enumerate(lines, start):
        if not buf:
            first = number
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        yield first, buf + line
        buf = ""
    if buf:
        yield first, buf


def _command(line: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    text = line.strip()
    if text.startswith("$ "):
        text = text[2:]
    if not text or DIAGRAM.search(text):
        return None
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return None  # not a shell line (prose, an unbalanced quote in a sample)
    cut = []
    for word in words:
        if word in CUT:
            break
        if word.endswith(";"):
            cut.append(word[:-1])
            break
        cut.append(word)
    if cut and cut[0] == "sudo":  # a board's root commands (docs/deploy-pi.md) count too
        cut.pop(0)
        if cut[:1] == ["-u"]:  # ... and those run as the service user (sudo -u nerve-edge)
            del cut[:2]
    env = []
    while cut and ENV_WORD.match(cut[0]):
        env.append(cut.pop(0))
    if not cut or Path(cut[0]).name not in TOOLS:
        return None
    return tuple(env), tuple(cut)


def collect() -> list[DocCommand]:
    found = []
    for path in doc_files():
        rel = path.relative_to(ROOT).as_posix()
        for lang, start, lines in _blocks(path.read_text(encoding="utf-8")):
            if lang in NOT_SHELL:
                continue
            for number, line in _logical_lines(start, lines):
                parsed = _command(line)
                if parsed is not None:
                    found.append(DocCommand(rel, number, *parsed))
    return found


# ---------------------------------------------------------------------------------- mapping
# Paths the docs assume: a placeholder word -> what the test uses. Relative paths are inside
# the test's working folder (tests/docs/doc_workspace.py made the stand-ins there); run folders
# are those earlier documented commands trained (docs/train.md trains runs/unet; the test copies
# it to the other run folders the docs name, runs/base16 and runs/final/default).
PLACEHOLDERS = {
    "/path/clinic": "clinic",  # README: a clinic's folder-layout data
    "DATA": "data/kaggle-nerve/train",  # "a prepared data folder" (docs/train.md, convert.md)
    "DIR": "data/kaggle-nerve/train",
    "RUN": "runs/unet",  # a training run folder
    "model.keras": "runs/unet/model.keras",
    "model.tflite": str(ROOT / "edge/models/nerve_default_int8.tflite"),
    "model.onnx": str(ROOT / "edge/models/nerve_default.onnx"),
    # a nerve model to start the nerve+vessel model from (12 base filters, as the command says)
    "NERVE_MODEL.keras": str(ROOT / "edge/models/nerve_default_float.keras"),
    "docs/data/kaggle-nerve-2036.txt": "frames.txt",  # the stand-in download's frame ids
    "docs/data/FRAMES.txt": "frames.txt",
    "TEXT": "documented-commands test",
    "v$i.json": "v1.json",  # docs/serve.md's shell loop, first pass
    "h$i.json": "h1.json",
}
PREFIXES = {
    "RUN/": "runs/base16/",  # docs/bench.md: RUN, its edge-convert OUT folder, NAME
    "OUT/": "models/base16/",  # (what docs/convert.md's first command wrote)
    "/opt/nerve-edge/src/": f"{ROOT}/",  # docs/deploy-pi.md: the clone on the board
}
IN_WORD = {"NAME-": "base16-"}  # docs/bench.md: the run folder's name, before each variant


@dataclass
class Shrink:
    """Flags set (replacing the documented value) or added, per tool and subcommand; the
    value "" adds a switch, None removes the flag."""

    set: dict[str, str | None] = field(default_factory=dict)

    def apply(self, words: list[str]) -> list[str]:
        words = list(words)
        for flag, value in self.set.items():
            if value == "":  # a switch: added once
                words += [] if flag in words else [flag]
            elif flag in words:
                i = words.index(flag)
                if value is None:
                    del words[i:i + 2]
                else:
                    words[i + 1] = value
            elif value is not None:
                words += [flag, value]
        return words


TRAIN_SHRINK = Shrink({"--epochs": "1", "--max-steps-per-epoch": "1", "--progress": "0"})
# (tool, subcommand) -> the flags that make it short; the subcommand "" is the tool's default.
SHRINK = {
    ("edge-train", ""): TRAIN_SHRINK,
    ("edge-train", "cv"): Shrink({"--folds": "2"}),  # + TRAIN_SHRINK after its "--"
    ("edge-convert", ""): Shrink({"--prune-epochs": "1", "--latency-runs": "3",
                                  "--calib-frames": "8"}),
    ("edge-convert", "prune"): Shrink({"--epochs": "1"}),
    ("edge-convert", "quantize"): Shrink({"--calib-frames": "8"}),
    ("edge-bench", "compare"): Shrink({"--warmup": "2", "--runs": "5", "--repeats": "1",
                                       "--max-frames": "30", "--in-process": ""}),
    ("make", "run"): Shrink({}),  # RUN_FRAMES below
    # not shorter but elsewhere: the board's state folder (/var/lib/nerve-edge) -> one here
    ("edge-deploy", "install"): Shrink({"--state": "board-state"}),
    ("edge-deploy", "status"): Shrink({"--state": "board-state"}),
    ("edge-deploy", "rollback"): Shrink({"--state": "board-state"}),
}
SUBCOMMANDS = {
    "edge-train": {"eval", "cv", "prepare", "export-init", "select", "label"},
    "edge-convert": {"prune", "quantize", "onnx", "validate", "targets"},
    "edge-bench": {"latency", "ceiling", "accuracy", "pipeline", "compare", "macs", "soak"},
    "edge-deploy": {"install", "status", "rollback"},
}
# make run: the venv is the one the suite already runs in (-o: make must not rebuild it in the
# middle of the test) and 200 frames instead of 1500.
MAKE_RUN = ["-o", ".venv-edge/.installed", "RUN_FRAMES=200"]


def subcommand(words) -> str:
    tool = Path(words[0]).name
    if tool == "make":
        return words[1] if len(words) > 1 else ""
    rest = words[1:2]
    return rest[0] if rest and rest[0] in SUBCOMMANDS.get(tool, ()) else ""


def _serve(value: str) -> str:
    """Any free port on the documented address: 8080 may be taken on a shared machine."""
    host, _, _port = value.rpartition(":")
    return f"{host}:0" if host else "0"


def _map_word(word: str, pacs_port: int) -> str:
    if word in PLACEHOLDERS:
        return PLACEHOLDERS[word]
    for prefix, repl in PREFIXES.items():
        if word.startswith(prefix):
            word = repl + word[len(prefix):]
    for part, repl in IN_WORD.items():
        word = word.replace(part, repl)
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+:\d+:\w+", word):  # a C-STORE node
        return f"127.0.0.1:{pacs_port}:{word.rsplit(':', 1)[1]}"
    if word.startswith("https://pacs"):  # a DICOMweb root
        return f"http://127.0.0.1:{pacs_port}/dicom-web"
    return word


def as_run(cmd: DocCommand, pacs_port: int) -> list[str]:
    """The argv the test runs for a documented command (tool name first, not yet a path)."""
    words = [Path(cmd.words[0]).name]
    raw = list(cmd.words[1:])
    for i, word in enumerate(raw):
        if word.startswith("[") or word.endswith("]"):  # optional flags shown as [--x Y]: used
            word = word.strip("[]")
        if i and raw[i - 1] == "--serve":
            word = _serve(word)
        words.append(_map_word(word, pacs_port))
    if "--serve" in words and "--no-mdns" not in words:
        words.append("--no-mdns")  # tests never announce over multicast beyond loopback
    tool, sub = words[0], subcommand(words)
    if tool == "edge-train" and sub == "cv" and "--" in words:
        cut = words.index("--")
        head, tail = SHRINK[(tool, sub)].apply(words[:cut]), words[cut + 1:]
        return [*head, "--", *TRAIN_SHRINK.apply(tail)]
    if tool == "make" and sub == "run":
        return ["make", *MAKE_RUN, *words[1:]]
    shrink = SHRINK.get((tool, sub))
    return shrink.apply(words) if shrink else words


def unmapped(argv: list[str]) -> list[str]:
    """Words still looking like placeholders (ALLCAPS, <...>, [...]) after the mapping."""
    return [w for w in argv if re.fullmatch(r"[A-Z][A-Z0-9_]{2,}(\.\w+)?|<.*>|\[.*\]", w)]


def out_path(argv: list[str]) -> str | None:
    return argv[argv.index("--out") + 1] if "--out" in argv[:-1] else None
