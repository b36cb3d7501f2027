"""`spatial-vlm train-pieces --model DIR --data TRAIN --val VAL --out DIR`.

Adds (or retrains) a saved SpatialVLM's piece head and leaves every other weight as it was. The pairs
come from the model's own detections (piece_data.py). Its threshold is the one with the most net right
judgements on the val pairs (pairs it calls one object that are, minus those that are two objects), and
is saved in the config; when no threshold gains, it is 1.0 and the head never drops a detection."""
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

from .own_detections import add_head_arguments, save_with_records
from .piece_data import PiecePairs, collect_pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_head_arguments(parser, frames=1200, val_use="threshold choice")
    parser.add_argument("--epochs", type=int, default=300, help="full-batch epochs")
    parser.add_argument("--hidden", type=int, help="hidden size of a new head (default: the config's)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)


def with_piece_head(path: Path, hidden: int | None = None) -> tuple[SpatialVLM, object]:
    """The saved model with a fresh piece head (an existing one is replaced)."""
    model, tokenizer = load_model(path)
    if model.region_head is None:
        raise ValueError(f"{path / 'config.json'}: the model has no region head whose pieces to judge "
                         "(spatial-vlm train-regions first)")
    model.config.use_piece_head = True
    model.config.piece_head_hidden = hidden or model.config.piece_head_hidden
    try:
        return with_new_head(model, "piece_head."), tokenizer
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def best_threshold(prob: np.ndarray, same: np.ndarray) -> tuple[float, int]:
    """(threshold, net) maximising pairs called one object that are, minus those that are two; (1.0, 0)
    when no threshold gains."""
    best = (1.0, 0)
    for t in np.round(np.arange(0.05, 1.0, 0.05), 2):
        called = prob >= t
        net = int((called & same).sum()) - int((called & ~same).sum())
        if net > best[1]:
            best = (float(t), net)
    return best


def pair_metrics(prob: np.ndarray, same: np.ndarray, threshold: float) -> dict:
    called = prob >= threshold
    return {"pairs": int(len(same)), "one_object": int(same.sum()), "called_one": int(called.sum()),
            "called_one_right": int((called & same).sum()), "called_one_wrong": int((called & ~same).sum()),
            "loss": float(F.binary_cross_entropy(torch.from_numpy(prob).double().clamp(1e-6, 1 - 1e-6),
                                                 torch.from_numpy(same).double())) if len(same) else float("nan")}


@torch.inference_mode()
def predict(model: SpatialVLM, pairs: PiecePairs) -> np.ndarray:
    model.piece_head.eval()
    return torch.sigmoid(model.piece_head(torch.from_numpy(pairs.features))).numpy()


def train_piece_head(model: SpatialVLM, train: PiecePairs, epochs: int, lr: float, seed: int,
                     progress: bool = True) -> dict:
    """Full-batch AdamW on class-balanced binary cross-entropy; only the piece head learns."""
    if train.same.all() or not train.same.any():
        raise ValueError("the training pairs need both pieces of one object and separate objects")
    torch.manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    head = model.piece_head
    for p in head.parameters():
        p.requires_grad_(True)
    x = torch.from_numpy(train.features)
    y = torch.from_numpy(train.same.astype(np.float32))
    pos_weight = (1 - y).sum() / y.sum()
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-3)
    t0 = time.time()
    losses = []
    head.train()
    for _ in tqdm(range(epochs), desc="piece head", unit="epoch", disable=not progress):
        loss = F.binary_cross_entropy_with_logits(head(x), y, pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    head.eval()
    return {"epochs": epochs, "first_loss": losses[0], "last_loss": losses[-1], "seconds": time.time() - t0,
            "parameters": sum(p.numel() for p in head.parameters())}


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)  # the new head's initial weights
    model, tokenizer = with_piece_head(args.model, args.hidden)
    train = collect_pairs(args.model, args.data, args.frames, desc="train")
    val = collect_pairs(args.model, args.val, args.val_frames, desc="val")
    summary = train_piece_head(model, train, args.epochs, args.lr, args.seed)
    prob = predict(model, val)
    threshold, net = best_threshold(prob, val.same)
    model.config.piece_head_threshold = threshold
    summary.update(threshold=threshold, val_net_right=net, val=pair_metrics(prob, val.same, threshold),
                   train=pair_metrics(predict(model, train), train.same, threshold), source_model=str(args.model),
                   data=str(args.data), val_split=str(args.val), frames=args.frames, val_frames=args.val_frames)
    save_with_records(model, tokenizer, args.model, args.out)
    (args.out / "piece_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    v = summary["val"]
    print(f"piece head ({summary['parameters']} parameters, {len(train)} train pairs) -> {args.out}; threshold "
          f"{threshold:.2f}: of the val pairs it calls {v['called_one_right']} of {v['one_object']} pieces of one "
          f"object one, and {v['called_one_wrong']} of {v['pairs'] - v['one_object']} separate objects")
    return 0
