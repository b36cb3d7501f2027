"""`spatial-vlm train-regions --model DIR --data TRAIN --val VAL --out DIR [--teacher DIR]`.

Trains the region head of a saved SpatialVLM (adding one when the folder has none) and leaves every
other weight as it was. Without --teacher it learns from ground truth (the teacher's recipe); with a
teacher that has a region head it is distilled: cross-entropy on the labels plus T^2-scaled KL to the
teacher's softened class distribution (Hinton et al.), the classification analogue of the answer-token
KL in losses.py."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from spatial_vlm_ros.inference.engine import load_model
from spatial_vlm_ros.model import SpatialVLM
from spatial_vlm_ros.model.build import with_new_head

from .own_detections import save_with_records
from .region_data import RegionExamples, load_region_examples, max_trained_depth_m


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="saved SpatialVLM folder to add/train a region head in")
    parser.add_argument("--data", required=True, type=Path, help="training split")
    parser.add_argument("--val", required=True, type=Path, help="validation split (model selection)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--teacher", type=Path, help="a SpatialVLM with a trained region head to distill from")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--kd-weight", type=float, default=1.0)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--widths", type=int, nargs="+", help="conv widths of a new head (default: the config's)")
    parser.add_argument("--hidden", type=int, help="hidden size of a new head")
    parser.add_argument("--crop", type=int, help="crop size of a new head")
    parser.add_argument("--new-head", action="store_true",
                        help="replace a region head the model already has with a new one (default: continue it)")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="stop after this wall-clock budget (0 = none)")
    parser.add_argument("--seed", type=int, default=0)


def with_region_head(path: Path, widths=None, hidden=None, crop=None, new: bool = False
                     ) -> tuple[SpatialVLM, object, bool]:
    """(model, tokenizer, fresh): the saved model, given a new region head when it has none or `new`.
    A head it has is continued, so a shape asked for that differs from it is an error rather than
    silently ignored."""
    model, tokenizer = load_model(path)
    config = model.config
    if model.region_head is not None and not new:
        asked = {"widths": list(widths) if widths else None, "hidden": hidden, "crop": crop}
        has = {"widths": list(config.region_widths), "hidden": config.region_hidden, "crop": config.region_crop_size}
        differ = [k for k, v in asked.items() if v is not None and v != has[k]]
        if differ:
            raise ValueError(f"{path / 'config.json'}: the model already has a region head "
                             f"({', '.join(f'{k} {has[k]}' for k in differ)}); pass --new-head to replace it")
        return model, tokenizer, False
    config.use_region_head = True
    config.region_widths = list(widths or config.region_widths)
    config.region_hidden = hidden or config.region_hidden
    config.region_crop_size = crop or config.region_crop_size
    try:
        return with_new_head(model, "region_head."), tokenizer, True
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _logits(model: SpatialVLM, ex: RegionExamples, idx: np.ndarray) -> torch.Tensor:
    crops = torch.from_numpy(ex.crops[idx].astype(np.float32))
    return model.region_head(crops, torch.from_numpy(ex.scalars[idx]))


@torch.inference_mode()
def predict(model: SpatialVLM, ex: RegionExamples, batch: int = 1024) -> np.ndarray:
    model.region_head.eval()
    return np.concatenate([_logits(model, ex, np.arange(i, min(i + batch, len(ex)))).float().numpy()
                           for i in range(0, len(ex), batch)]) if len(ex) else np.zeros((0, 1), np.float32)


def region_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    pred = logits.argmax(-1)
    pos = labels > 0
    loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
    return {"loss": loss, "accuracy": float((pred == labels).mean()),
            "object_accuracy": float((pred[pos] == labels[pos]).mean()) if pos.any() else float("nan"),
            "background_rejected": float((pred[~pos] == 0).mean()) if (~pos).any() else float("nan")}


def train_region_head(model: SpatialVLM, train: RegionExamples, val: RegionExamples, teacher_logits=None,
                      epochs: int = 6, batch_size: int = 256, lr: float = 3e-3, kd_weight: float = 1.0,
                      temperature: float = 2.0, max_minutes: float = 0.0, seed: int = 0, progress: bool = True) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    head = model.region_head
    for p in head.parameters():
        p.requires_grad_(True)
    steps_per_epoch = max(1, len(train) // batch_size)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * steps_per_epoch, pct_start=0.1)
    labels = torch.from_numpy(train.labels)
    history, best, best_state = [], float("inf"), None
    t0, step = time.time(), 0
    bar = tqdm(total=epochs * steps_per_epoch, desc="region head", unit="step", disable=not progress)
    for epoch in range(epochs):
        head.train()
        order = rng.permutation(len(train))
        for b in range(steps_per_epoch):
            idx = np.sort(order[b * batch_size: (b + 1) * batch_size])
            logits = _logits(model, train, idx)
            loss = F.cross_entropy(logits, labels[idx])
            if teacher_logits is not None:
                t = temperature
                target = F.softmax(torch.from_numpy(teacher_logits[idx]) / t, -1)
                kd = F.kl_div(F.log_softmax(logits / t, -1), target, reduction="batchmean") * t * t
                loss = loss + kd_weight * kd
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if max_minutes and time.time() - t0 > 60 * max_minutes:
                break
        m = region_metrics(predict(model, val), val.labels)
        m.update(epoch=epoch + 1, steps=step, minutes=(time.time() - t0) / 60)
        history.append(m)
        bar.write(f"epoch {epoch + 1}: val loss {m['loss']:.3f}, objects {m['object_accuracy']:.3f}, "
                  f"background rejected {m['background_rejected']:.3f}")
        if m["loss"] < best:
            best, best_state = m["loss"], {k: v.clone() for k, v in head.state_dict().items()}
        if max_minutes and time.time() - t0 > 60 * max_minutes:
            break
    bar.close()
    head.load_state_dict(best_state)
    head.eval()
    return {"history": history, "best_val": min(history, key=lambda h: h["loss"]), "steps": step,
            "minutes": (time.time() - t0) / 60, "train_examples": len(train), "val_examples": len(val),
            "parameters": sum(p.numel() for p in head.parameters()), "distilled": teacher_logits is not None}


def run(args: argparse.Namespace) -> int:
    model, tokenizer, fresh = with_region_head(args.model, args.widths, args.hidden, args.crop, args.new_head)
    crop = model.config.region_crop_size
    teacher = None
    if args.teacher is not None:
        teacher, _ = load_model(args.teacher)
        if teacher.region_head is None or teacher.config.region_crop_size != crop:
            raise ValueError(f"{args.teacher}: teacher has no region head for {crop}-pixel crops "
                             "(train one with spatial-vlm train-regions first)")
        if teacher.config.categories != model.config.categories:
            raise ValueError(f"{args.teacher / 'config.json'}: teacher categories differ from the student's")
    train = load_region_examples(args.data, crop, desc="train")
    val = load_region_examples(args.val, crop, desc="val")
    teacher_logits = predict(teacher, train) if teacher is not None else None
    summary = train_region_head(model, train, val, teacher_logits, args.epochs, args.batch_size, args.lr,
                                args.kd_weight, args.temperature, args.max_minutes, args.seed)
    model.config.max_trained_depth_m = max_trained_depth_m(args.data)
    summary.update(source_model=str(args.model), teacher=str(args.teacher) if args.teacher else None,
                   new_head=fresh, data=str(args.data), val=str(args.val),
                   max_trained_depth_m=model.config.max_trained_depth_m)
    # The base model's records travel with it (its piece and shade heads stay in the weights).
    save_with_records(model, tokenizer, args.model, args.out)
    (args.out / "region_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    best = summary["best_val"]
    print(f"region head ({summary['parameters']} parameters, {summary['steps']} steps, {summary['minutes']:.1f} min) "
          f"-> {args.out}; val objects {best['object_accuracy']:.3f}, background rejected {best['background_rejected']:.3f}")
    return 0
