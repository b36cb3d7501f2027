"""`spatial-vlm train-shades --model DIR --data TRAIN --val VAL --out DIR`.

Adds (or retrains) a saved SpatialVLM's shade head and leaves every other weight as it was. The examples
come from the model's own detections (shade_data.py). A multinomial logistic regression, fitted by
L-BFGS on standardised inputs. When it does not name more val detections' shades right than the language
head alone, the model is saved without it (and the summary says so)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spatial_vlm_ros.inference.engine import load_model
from spatial_vlm_ros.model import SpatialVLM
from spatial_vlm_ros.model.build import with_new_head

from .own_detections import add_head_arguments, save_with_records
from .shade_data import ShadeExamples, collect_shades


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_head_arguments(parser, frames=800, val_use="keep the head or not")
    parser.add_argument("--l2", type=float, default=1e-3, help="weight decay of the logistic regression")


def with_shade_head(path: Path) -> tuple[SpatialVLM, object]:
    """The saved model with a fresh shade head (an existing one is replaced)."""
    model, tokenizer = load_model(path)
    if model.region_head is None or model.object_tokenizer is None:
        raise ValueError(f"{path / 'config.json'}: the model needs a region head and a language head whose "
                         "colours to re-decide (spatial-vlm train-regions first)")
    model.config.use_shade_head = True
    try:
        return with_new_head(model, "shade_head."), tokenizer
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def fit_shade_head(model: SpatialVLM, train: ShadeExamples, l2: float) -> dict:
    """Only the shade head learns: its standardisation from the labelled examples, then its weights
    (full-batch L-BFGS from zeros, so there is no seed)."""
    known = train.label >= 0
    if len(np.unique(train.label[known])) < 2:
        raise ValueError("the training detections need at least two different shades")
    head = model.shade_head
    x = torch.from_numpy(train.features[known]).double()
    y = torch.from_numpy(train.label[known])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    head.input_mean.copy_(mean.float())
    head.input_scale.copy_(scale.float())
    z = (x - mean) / scale
    weight = torch.zeros_like(head.linear.weight, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros_like(head.linear.bias, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")
    t0 = time.time()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ weight.T + bias, y) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    first = float(closure().detach())
    opt.step(closure)
    with torch.no_grad():
        head.linear.weight.copy_(weight.float())
        head.linear.bias.copy_(bias.float())
    return {"first_loss": first, "last_loss": float(closure().detach()), "seconds": time.time() - t0,
            "parameters": sum(p.numel() for p in head.parameters())}


@torch.inference_mode()
def shade_accuracy(model: SpatialVLM, examples: ShadeExamples) -> dict:
    """Right shades among the detections of a known shade: the language head's and the shade head's."""
    known = examples.label >= 0
    pred = model.shade_head(torch.from_numpy(examples.features[known])).argmax(1).numpy()
    n = int(known.sum())
    lm = examples.lm_choice(len(model.config.shade_colors))
    return {"detections": n, "lm_right": int((lm[known] == examples.label[known]).sum()),
            "head_right": int((pred == examples.label[known]).sum())}


def run(args: argparse.Namespace) -> int:
    model, tokenizer = with_shade_head(args.model)
    train = collect_shades(args.model, args.data, args.frames, desc="train")
    val = collect_shades(args.model, args.val, args.val_frames, desc="val")
    summary = fit_shade_head(model, train, args.l2)
    summary.update(train=shade_accuracy(model, train), val=shade_accuracy(model, val), shades=model.config.shade_colors,
                   source_model=str(args.model), data=str(args.data), val_split=str(args.val), frames=args.frames,
                   val_frames=args.val_frames)
    v = summary["val"]
    summary["kept"] = v["head_right"] > v["lm_right"]
    if not summary["kept"]:
        model.config.use_shade_head = False
        model.shade_head = None
    save_with_records(model, tokenizer, args.model, args.out)
    (args.out / "shade_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"shade head ({summary['parameters']} parameters, {int((train.label >= 0).sum())} train detections) -> "
          f"{args.out}: {v['head_right']} of {v['detections']} val shades right (language head alone "
          f"{v['lm_right']}){'' if summary['kept'] else '; not better, so the model is saved without it'}")
    return 0
