"""A training run's weights as a small, safe folder to start the next stage from.

    python -m app.nano.snapshot --run RUN_DIR --out SNAPSHOT_DIR

Machines here are lent per session and their disks do not last: a run's `checkpoint.pt` (65 MB
with the optimizer's moments, a pickle) is lost with the machine, and each session would start
the recipe again. A snapshot keeps what `app.nano.train --init-from` needs: the model folder
(config, tokenizer, chat template), the model's and the auxiliary heads' weights in fp16 as
safetensors (no pickle: a file in the repository must not run code when loaded; fp16 halves it
to ~11 MB and is far finer than a starting point needs), and `snapshot.json` saying where they
came from (family, step, screens, the run's last held-out evaluation). The optimizer starts
fresh from a snapshot, as from any `--init-from`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

WEIGHTS = "weights.safetensors"
INFO = "snapshot.json"
_PREFIXES = ("model.", "aux.")  # one file, two state dicts


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A training run's checkpoint.pt (a pickle the run wrote itself), its tensors on the CPU
    whatever device trained it (`app.nano.train --device`): ship, score and snapshot it here."""
    import torch

    return torch.load(path, weights_only=False, map_location="cpu")


def is_snapshot(folder: Path) -> bool:
    return (folder / WEIGHTS).is_file() and (folder / INFO).is_file()


def check_weights(folder: Path) -> None:
    """ValueError unless `folder` holds weights to start from: a training run (checkpoint.pt)
    or a snapshot, each with its model folder (config, tokenizer). Reads no tensors."""
    if not folder.is_dir():
        raise ValueError(f"{folder} does not exist")
    if not ((folder / "checkpoint.pt").is_file() or is_snapshot(folder)):
        raise ValueError(f"{folder} is neither a training run (checkpoint.pt) nor a snapshot "
                         f"({INFO} and {WEIGHTS})")
    if not (folder / "model" / "config.json").is_file():
        raise ValueError(f"{folder} has no model folder (model/config.json)")


def weights_of(folder: Path) -> dict[str, Any]:
    """The weights in a training run or a snapshot: {"family", "step", "model", "aux"}, tensors
    in fp32 on the CPU; ValueError naming what is missing or broken (check_weights, read)."""
    check_weights(folder)
    if is_snapshot(folder):
        info, model, aux = read(folder)
        return {"family": info["family"], "step": info.get("step"), "model": model, "aux": aux}
    saved = read_checkpoint(folder / "checkpoint.pt")
    return {"family": saved.get("family"), "step": saved.get("step"), "model": saved["model"],
            "aux": saved.get("aux", {})}


def write(run: Path, out: Path) -> Path:
    """Snapshot the run folder `run` (its checkpoint.pt and model/) into `out` (replaced)."""
    import torch
    from safetensors.torch import save_file

    saved = read_checkpoint(run / "checkpoint.pt")
    tensors = {f"{prefix}{name}": value.detach().to(torch.float16).contiguous()
               if value.is_floating_point() else value.detach().contiguous()
               for prefix, state in zip(_PREFIXES, (saved["model"], saved.get("aux", {})),
                                        strict=True)
               for name, value in state.items()}
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
             if line.strip() and '"eval"' in line] if (run / "metrics.jsonl").is_file() else []
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(run / "model", staging / "model")
    save_file(tensors, str(staging / WEIGHTS))
    info = {"family": saved["family"], "step": saved["step"], "screens": saved.get("screens"),
            "buttons": saved.get("buttons"), "train_cpu_min": round(saved["cpu_seconds"] / 60, 1),
            "source": str(run), "last_eval": evals[-1] if evals else None}
    (staging / INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)  # the new one is complete: now replace the old
    staging.rename(out)
    return out


def read(folder: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(info, model state, aux state) of a snapshot, in fp32; ValueError naming a broken file."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        info = json.loads((folder / INFO).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / WEIGHTS))
    except (OSError, ValueError, SafetensorError) as exc:
        raise ValueError(f"{folder} is not a readable Nano snapshot: {exc}") from exc
    if not isinstance(info, dict) or "family" not in info:
        raise ValueError(f"{folder / INFO} does not name the model family")
    states: list[dict[str, Any]] = [{}, {}]
    for key, value in tensors.items():
        part = next((i for i, p in enumerate(_PREFIXES) if key.startswith(p)), None)
        if part is None:
            raise ValueError(f"{folder / WEIGHTS}: unexpected tensor {key!r}")
        states[part][key[len(_PREFIXES[part]):]] = (
            value.to(torch.float32) if value.is_floating_point() else value)
    return info, states[0], states[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.nano.snapshot",
                                description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="an app.nano.train output folder")
    p.add_argument("--out", type=Path, required=True, help="the snapshot folder to write")
    args = p.parse_args(argv)
    if not (args.run / "checkpoint.pt").is_file():
        p.error(f"no checkpoint at {args.run / 'checkpoint.pt'}")
    out = write(args.run, args.out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
