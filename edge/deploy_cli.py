"""edge-deploy: put a converted model on a board, keep the one before it, go back.

A fifth, small command rather than an edge-run subcommand: edge-run is the service's
long-running process (flags -> frames), while installing is a one-off admin step with its own
verbs (install / rollback / status) run with the service user's rights; mixing them would give
edge-run a second grammar. It needs only the device install (no TensorFlow).
"""

from __future__ import annotations

# First: Ctrl-C and SIGTERM end the program with 130 and one line from here on.
from edge import signals

signals.install_if_program("edge-deploy", __name__)

import argparse
import json
import sys
from pathlib import Path

from edge import clikit, log
from edge.model.store import CURRENT, MODELS_DIR, ModelStore, default_state_dir

PROG = "edge-deploy"
RESTART_HINT = "restart the service to load it: sudo systemctl restart nerve-edge"
EXAMPLES = f"""\
examples:
  sudo -u nerve-edge edge-deploy install default              the shipped model, first
  sudo -u nerve-edge edge-deploy install out/clinic_int8.tflite
  sudo -u nerve-edge edge-deploy rollback
  edge-deploy status
  edge-deploy install out/clinic_int8.tflite --state /tmp/board      a folder of your choice

The service runs what models/{CURRENT} points to: its --model is
/var/lib/nerve-edge/{MODELS_DIR}/{CURRENT} (deploy/nerve-edge.env). After install or rollback,
{RESTART_HINT}.
For many boards, deploy/ansible/install-model.yml runs the same install on each.

exit status: 0 ok; 2 bad input (not a model, no or wrong sidecar, sha256 mismatch, a model
forced below the Dice floor without --force, nothing to roll back to, a folder you cannot
write); 1 runtime failure; 130 Ctrl-C or SIGTERM.
"""


def build_parser() -> argparse.ArgumentParser:
    ap = clikit.ArgumentParser(
        prog=PROG, description="Install a converted model on this board, keep the previous "
        "one, and go back to it.", epilog=EXAMPLES, formatter_class=clikit.HelpFormatter)
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument("--state", type=Path, default=None, metavar="DIR",
                       help="the state folder whose models/ holds the installs (default: "
                       "$STATE_DIRECTORY, $NERVE_EDGE_STATE or /var/lib/nerve-edge)")
    clikit.add_common_flags(state)
    sub = ap.add_subparsers(dest="verb", required=True, metavar="{install,rollback,status}")
    ins = sub.add_parser("install", parents=[state], formatter_class=clikit.HelpFormatter,
                         help="verify a model and its sidecar, copy them in, make them current")
    ins.add_argument("model", type=str, metavar="MODEL",
                     help="a .tflite or .onnx written by edge-convert, its .json beside it; "
                     "'default': the model this package ships")
    ins.add_argument("--force", action="store_true",
                     help="install a model converted with --allow-low-dice (below the gate)")
    sub.add_parser("rollback", parents=[state], formatter_class=clikit.HelpFormatter,
                   help="make the previous model current again")
    st = sub.add_parser("status", parents=[state], formatter_class=clikit.HelpFormatter,
                        help="the current and previous models with their gate figures")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    return ap


def _line(role: str, entry: dict | None) -> str:
    if entry is None:
        return f"{role:9s} none"
    gate = entry["gate"]
    dice = gate.get("per_image_dice")
    figures = f"Dice {dice:.4f}" if isinstance(dice, (int, float)) else "no gate figures"
    if "min_dice" in gate:
        figures += f" (floor {gate['min_dice']:g})"
    if isinstance(gate.get("dice_drop"), (int, float)):
        figures += f", drop {gate['dice_drop']:.4f}"
    if isinstance(gate.get("false_positive_rate"), (int, float)):
        figures += (f", false positives {gate['false_positive_rate']:.4f} of "
                    f"{gate.get('n_empty_truth', '?')} empty frames")
    if gate.get("forced_below_floor"):
        figures += ", FORCED below the floor"
    return (f"{role:9s} {entry['name']} v{entry['version']}  sha256 {entry['sha256'][:12]}  "
            f"{figures}  [{entry['folder']}]")


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    store = ModelStore(args.state or default_state_dir())
    if args.verb == "install":
        done = store.install(args.model, force=args.force)
        log.say(f"{PROG}: installed {done.meta.name} v{done.meta.version} as "
              f"{store.root / CURRENT} -> {done.folder.name}; {RESTART_HINT}")
    elif args.verb == "rollback":
        back = store.rollback()
        log.say(f"{PROG}: {store.root / CURRENT} -> {back.folder.name} "
              f"({back.meta.name} v{back.meta.version}) again; {RESTART_HINT}")
    else:
        status = store.status()
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            print(f"models in {status['models_dir']} (the service runs {status['run_path']})")
            print(_line("current", status["current"]))
            print(_line("previous", status["previous"]))
    return clikit.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return signals.finish(clikit.run_cli(PROG, _main, argv))  # a program leaves here


if __name__ == "__main__":
    sys.exit(main())
