"""Train a tiny from-scratch model on synthetic grounding screens (the Deskhand Nano probe).

    python -m app.nano.train --family fara15|fara --out DIR --minutes M --seed S [--resume]
    python -m app.nano.train --family fara15|fara --out DIR --max-steps N --seed S [--resume]

`--minutes` is the training budget in CPU minutes of this process (evaluation excluded), in
total across resumes: `--resume --minutes 60` continues a 20-minute run for 40 more; the same
budget reaches different steps on different machines, so `--max-steps` (alone or with it) is
the budget that reproduces a run: the same seed and steps give the same weights. The batch of
step s is screens s*B .. s*B+B-1 of the training split (offset by the seed), so a resumed run
sees exactly the batches an uninterrupted one would. Writes DIR/model/ (config, tokenizer),
DIR/checkpoint.pt, DIR/metrics.jsonl and DIR/curve.png.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import torch

from app.nano import snapshot, solved
from app.nano.aux import AuxHeads, attend_loss, reply_loss, word_table, word_tokens
from app.nano.evaluate import chance, hit_rates
from app.nano.examples import Encoder, aux_targets, collate
from app.nano.model import SIZES, build_model, fast_patch_embedding, make_folder
from app.nano.plot import draw_curve
from app.nano.prefetch import ExampleMaker, Examples
from app.nano.screens import WORDS
from app.nano.train_args import build_parser, check_device

SEED_STRIDE = 10**9  # training screens of seed s: s*stride, s*stride + 1, ...


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(__doc__)
    args = parser.parse_args(argv)
    if args.minutes is None and args.max_steps is None:
        parser.error("give a budget: --minutes M, --max-steps N, or both")
    if args.minutes is None:
        args.minutes = float("inf")
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    if args.solved:
        if args.family != solved.FAMILY:
            parser.error(f"--solved: the data is resized for {solved.FAMILY}'s image grid")
        if not 0 < args.solved_share <= 1:
            parser.error("--solved-share must be in (0, 1]")
        try:
            args.solved_set = solved.load(Path(args.solved))
        except ValueError as exc:
            parser.error(f"--solved: {exc}")
    check_device(parser, args.device)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    run = Run(args, out, *_start(args, out))
    run.train()
    return 0


def _start(args, out: Path):
    """(model, aux heads, optimizer, step, cpu_seconds): fresh, or from DIR/checkpoint.pt with
    --resume."""
    folder = out / "model"
    ckpt = out / "checkpoint.pt"
    if args.resume:
        if not ckpt.is_file():
            raise SystemExit(f"--resume: no checkpoint at {ckpt}")
    elif ckpt.exists():
        raise SystemExit(f"{ckpt} exists: pass --resume or choose another --out")
    elif args.init_from:
        source = Path(args.init_from)
        try:
            snapshot.check_weights(source)
        except ValueError as exc:
            raise SystemExit(f"--init-from: {exc}") from exc
        _clear_unsaved(out)
        shutil.copytree(source / "model", folder)
    else:
        _clear_unsaved(out)
        make_folder(args.family, folder, SIZES[args.size])
    torch.manual_seed(args.seed)
    model = build_model(folder, "eager" if args.aux_attend > 0 else None)
    fast_patch_embedding(model)
    aux = AuxHeads(model.config.get_text_config().hidden_size, len(WORDS), tied=args.read_tied,
                   balanced=args.read_balanced)
    device = torch.device(args.device)
    if args.init_from and not args.resume:
        source = Path(args.init_from)
        try:
            earlier = snapshot.weights_of(source)
        except ValueError as exc:
            raise SystemExit(f"--init-from: {exc}") from exc
        if earlier.get("family") != args.family:
            raise SystemExit(f"--init-from: that run trained {earlier.get('family')}, "
                             f"not {args.family}")
        model.load_state_dict(earlier["model"])
        if earlier.get("aux") and ("read_proj.weight" in earlier["aux"]) != args.read_tied:
            print(f"note: {source} trained {'the tied' if not args.read_tied else 'its own'} "
                  "reading head; this run's (--read-tied or not) starts fresh", flush=True)
        aux.load_state_dict(earlier.get("aux", {}), strict=False)  # heads added since start fresh
    model.to(device)  # in place: the optimizer holds these very parameters
    aux.to(device)
    optimizer = torch.optim.AdamW([*model.parameters(), *aux.parameters()], lr=args.lr,
                                  weight_decay=0.01, betas=(0.9, 0.95))
    if not args.resume:
        return model, aux, optimizer, 0, 0.0
    saved = snapshot.read_checkpoint(ckpt)
    share = args.solved_share if args.solved else None
    if saved.get("solved_digest") != _solved_digest(args) or saved.get("solved_share") != share:
        raise SystemExit("--resume: the run trained with other --solved data or share (or "
                         "none); the batches would change: use the same data folder and share")
    if "aux" in saved and ("read_proj.weight" in saved["aux"]) != args.read_tied:
        raise SystemExit("--resume: the run trained with" + ("" if args.read_tied else "out")
                         + " --read-tied's reading head; resume it with the same choice")
    model.load_state_dict(saved["model"])
    if "aux" in saved:
        aux.load_state_dict(saved["aux"])
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    random.setstate(saved["python_rng"])
    return model, aux, optimizer, saved["step"], saved["cpu_seconds"]


def _clear_unsaved(out: Path) -> None:
    """Make room for a fresh start where an earlier attempt stopped before its first checkpoint
    (it saved no weights: its model folder is the copy it started from, its metrics are kept
    aside as metrics.unsaved.jsonl); a model folder that no run of ours wrote is refused."""
    metrics, folder = out / "metrics.jsonl", out / "model"
    if metrics.is_file():
        os.replace(metrics, out / "metrics.unsaved.jsonl")
        if folder.is_dir():
            shutil.rmtree(folder)
        print(f"note: {out} holds an attempt that stopped before its first checkpoint; it "
              "starts again (its metrics are in metrics.unsaved.jsonl)", flush=True)
    elif folder.exists():
        raise SystemExit(f"{folder} exists but {out} holds no run of app.nano.train (no "
                         "metrics.jsonl): choose another --out")


def _solved_digest(args) -> str | None:
    data = getattr(args, "solved_set", None)
    return data.info["digest"] if data is not None else None


class Run:
    """One training process: steps, progress lines, evaluations and checkpoints."""

    def __init__(self, args, out: Path, model, aux: AuxHeads, optimizer, step: int,
                 cpu_seconds: float) -> None:
        self.args, self.out, self.model, self.aux, self.optimizer = args, out, model, aux, optimizer
        self.step, self.cpu_before = step, cpu_seconds
        folder = out / "model"
        self.encoder = Encoder.of_folder(args.family, folder)
        self.tokenizer = self.encoder.tokenizer
        self.pad_id = self.tokenizer.token_to_id("<|endoftext|>")
        self.params = sum(p.numel() for p in model.parameters())
        self.losses: list[float] = []
        vocab = self.tokenizer.get_vocab()
        self.device = torch.device(args.device)
        self.digit_ids = torch.tensor(sorted(i for t, i in vocab.items() if t.isdigit()),
                                      device=self.device)
        self.words = [t.to(self.device) for t in word_tokens(self.tokenizer, WORDS)]
        self.solved = getattr(args, "solved_set", None)  # read by main()
        self.maker = ExampleMaker(self.encoder, args.screens, args.buttons, self.solved,
                                  args.solved_share if self.solved else 0.0)

    def cpu(self) -> float:
        """Training CPU seconds so far (this process's, minus its evaluations, plus earlier runs)."""
        return self.cpu_before + time.process_time() - self.cpu_start - self.eval_cpu

    def train(self) -> None:
        args = self.args
        self.cpu_start, self.eval_cpu, wall0, step0 = time.process_time(), 0.0, time.time(), self.step
        last_ckpt = self.cpu()
        self._log({"kind": "start", "family": args.family, "params": self.params, "step": self.step,
                   "size": args.size, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                   "buttons": args.buttons, "screens": args.screens, "aux_read": args.aux_read,
                   "aux_point": args.aux_point, "aux_where": args.aux_where,
                   "aux_attend": args.aux_attend, "aux_centre": args.aux_centre,
                   "read_tied": args.read_tied, "read_balanced": args.read_balanced,
                   "attend_at": args.attend_at,
                   "init_from": args.init_from, "solved": args.solved,
                   "solved_share": args.solved_share if args.solved else None,
                   "solved_steps": len(self.maker.solved_examples),
                   "solved_digest": _solved_digest(args),
                   "digit_weight": args.digit_weight,
                   "chance": chance(args.eval_n, args.buttons, args.screens)})
        if self.step == 0:
            self._evaluate()
        with Examples(self.maker, self.indices, args.workers) as self.examples:
            self._steps(last_ckpt, wall0, step0)
        self.save()
        if self.step % args.eval_every:
            self._evaluate()
        self._log({"kind": "end", "step": self.step, "train_cpu_min": self.cpu() / 60,
                   "wall_min": (time.time() - wall0) / 60})

    def _steps(self, last_ckpt: float, wall0: float, step0: int) -> None:
        args = self.args
        while self.cpu() < args.minutes * 60 and (args.max_steps is None or self.step < args.max_steps):
            loss, parts = self.train_step()
            self.losses.append(loss)
            self._log({"kind": "step", "step": self.step, "loss": loss, **parts})
            if self.step % 10 == 0 or self.step == 1:
                self._progress(loss, wall0, step0)
            if self.step % args.eval_every == 0:
                self._evaluate()
            if self.cpu() - last_ckpt >= args.checkpoint_minutes * 60:
                self.save()
                last_ckpt = self.cpu()

    def batch(self, step: int) -> list[tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
        """Training step `step`'s examples as groups of equal image count (the step after a
        click carries two screenshots: padding every row to its length would double the step's
        cost): per group, its size, the model inputs and the auxiliary targets."""
        examples = self.examples.step(step)
        groups: dict[int, list] = {}
        for e in examples:
            groups.setdefault(len(e.grids), []).append(e)
        image_id = self.encoder.prompts.image_token_id
        return [(len(g), self._on_device(collate(g, self.pad_id, image_id)),
                 self._on_device(aux_targets(g))) for _, g in sorted(groups.items())]

    def _on_device(self, values: dict) -> dict:
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in values.items()}

    def indices(self, step: int) -> range:
        """The numbers of step `step`'s training examples (seeds far apart never share one)."""
        first = self.args.seed * SEED_STRIDE + step * self.args.batch
        return range(first, first + self.args.batch)

    def train_step(self) -> tuple[float, dict[str, float]]:
        """One optimizer step (gradients summed over the batch's groups, each weighted by its
        share of the batch); (the reply loss, the auxiliary losses when they are on)."""
        args = self.args
        lr = args.lr * min(1.0, (self.step + 1) / args.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        reply_sum, parts_sum = 0.0, {}
        for size, inputs, targets in self.batch(self.step):
            share = size / args.batch
            reply, total, parts = self._losses(inputs, targets)
            (total * share).backward()
            reply_sum += float(reply.detach()) * share
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v * share
        torch.nn.utils.clip_grad_norm_([*self.model.parameters(), *self.aux.parameters()], 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return reply_sum, {k: round(v, 4) for k, v in parts_sum.items()}

    def _losses(self, inputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """(reply loss, total loss, the auxiliary losses' values) of one group."""
        args = self.args
        labels = inputs.pop("labels")
        use_aux = (args.aux_read > 0 or args.aux_point > 0 or args.aux_where > 0
                   or args.aux_centre > 0)
        attend = args.aux_attend > 0
        digit_at = targets.pop("digit_at")
        centre = targets.pop("centre_x"), targets.pop("centre_y")
        out = self.model(**inputs, output_hidden_states=use_aux, output_attentions=attend)
        reply = self.reply_loss(out.logits, labels)
        total, parts = reply, {}
        if use_aux:
            words = (word_table(self.model.get_input_embeddings().weight, *self.words)
                     if args.read_tied else None)
            read, point, where = self.aux.losses(out.hidden_states,
                                                 inputs["mm_token_type_ids"].bool(), **targets,
                                                 words=words)
            total = total + args.aux_read * read + args.aux_point * point + args.aux_where * where
            parts = {k: float(v.detach())
                     for k, v in (("read", read), ("point", point), ("where", where))}
            if args.aux_centre > 0:
                centre_part = self.aux.centre_loss(out.hidden_states,
                                                   inputs["mm_token_type_ids"].bool(), *centre)
                total = total + args.aux_centre * centre_part
                parts["centre"] = float(centre_part.detach())
        if attend:
            layer = [a for a in out.attentions if a is not None][-1]
            # --attend-at first: only where the first digit is predicted. At the later digits
            # the answer's first digits are in context and point at the target by themselves
            # (measured on 2-button screens: 77-84 % of the head's weight on the target at
            # all digits, 45-52 % at the first, where the reading has to happen).
            at = digit_at if args.attend_at == "all" else [d[:1] for d in digit_at]
            attend_part = attend_loss(layer, inputs["mm_token_type_ids"].bool(),
                                      targets["target_cells"], at)
            total = total + args.aux_attend * attend_part
            parts["attend"] = float(attend_part.detach())
        return reply, total, parts

    def reply_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return reply_loss(logits, labels, self.digit_ids, self.args.digit_weight)

    def save(self) -> None:
        state = {"model": self.model.state_dict(), "aux": self.aux.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "buttons": self.args.buttons,
                 "screens": self.args.screens,
                 "step": self.step, "cpu_seconds": self.cpu(), "torch_rng": torch.get_rng_state(),
                 "python_rng": random.getstate(), "family": self.args.family,
                 "solved_digest": _solved_digest(self.args),
                 "solved_share": self.args.solved_share if self.args.solved else None}
        tmp = self.out / "checkpoint.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.out / "checkpoint.pt")

    def _progress(self, loss: float, wall0: float, step0: int) -> None:
        recent = self.losses[-10:]
        wall = time.time() - wall0
        rate = (self.step - step0) * self.args.batch / max(wall, 1e-9)
        cpu_share = (time.process_time() - self.cpu_start) / max(wall, 1e-9)
        left = self.args.minutes * 60 - self.cpu()  # CPU seconds; inf without --minutes
        if self.args.max_steps is not None:  # whichever budget ends first
            per_step = (self.cpu() - self.cpu_before) / max(1, self.step - step0)
            left = min(left, (self.args.max_steps - self.step) * per_step)
        eta = max(0.0, left) / max(cpu_share, 1e-3)
        budget = (f"{self.step}/{self.args.max_steps} steps" if self.args.max_steps is not None
                  else f"{self.cpu() / 60:.1f}/{self.args.minutes:g} CPU-min")
        print(f"step {self.step} loss {loss:.4f} (mean10 {sum(recent) / len(recent):.4f}) "
              f"{rate:.2f} ex/s  {budget}  train {self.cpu() / 60:.1f} CPU-min  "
              f"ETA {eta / 60:.1f} min", flush=True)

    def _evaluate(self) -> None:
        t0 = time.process_time()
        rates = hit_rates(self.model, self.encoder, self.args.eval_n, self.args.buttons,
                          self.args.screens)
        spent = time.process_time() - t0
        self.eval_cpu += spent
        recent = self.losses[-self.args.eval_every:]
        record = {"kind": "eval", "step": self.step, "examples": self.step * self.args.batch,
                  "train_cpu_min": round(self.cpu() / 60, 3),
                  "loss": round(sum(recent) / len(recent), 4) if recent else None,
                  **rates, "eval_cpu_s": round(spent, 1)}
        self._log(record)
        print("eval " + json.dumps(record), flush=True)
        draw_curve(self.out / "metrics.jsonl", self.out / "curve.png")

    def _log(self, record: dict) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    sys.exit(main())
