"""The training loop (teacher on ground truth, or student from a teacher): a readable accelerate loop.

prepare -> for each step: batch, forward, losses, weighting, backward, clip, step, log -> checkpoints.
Runs unchanged on CPU, one GPU or `accelerate launch`.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from accelerate import Accelerator
from tqdm import tqdm

from spatial_vlm_ros.model import SpatialVLM
from spatial_vlm_ros.model.build import new_model, save_model, tokenizer_for
from spatial_vlm_ros.model.tokenizer import load_tokenizer

from .batching import Batch, TrainingData, load_mentions
from .cache import load_features, load_images
from .config import TrainConfig
from .losses import TASKS, TaskWeighting, answer_loss, depth_loss, detection_loss
from .qa_eval import qa_accuracy


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    seconds: float
    parameters: int
    final_losses: dict[str, float]
    task_weights: dict[str, float]
    val: dict[str, float]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def compute_losses(model: SpatialVLM, batch: Batch, cfg: TrainConfig) -> tuple[dict[str, torch.Tensor], object]:
    lc = cfg.loss
    has_qa = batch.qa is not None and batch.qa.image_index.numel() > 0
    if model.config.use_roi_features or batch.pixel_values is None:
        out = model(batch.pixel_values, batch.depth, batch.objects, batch.qa if has_qa else None)
        lang = out
    else:
        out = model(batch.pixel_values, batch.depth)
        lang = model(objects=batch.objects, qa=batch.qa if has_qa else None) if batch.objects is not None else out
    losses: dict[str, torch.Tensor] = {}
    teach = batch.teacher
    if lang.answer_logits is not None and lc.answer > 0:
        losses["answer"] = answer_loss(lang.answer_logits, batch.qa.answer_labels, teach.answer_topk_ids,
                                       teach.answer_topk_logprobs, teach.answer_has_soft, lc.temperature,
                                       lc.soft_answer_weight, lc.soft_only_where_teacher_right)
    if out.log_depth is not None and lc.depth > 0:
        d = depth_loss(out.log_depth, out.depth_confidence, batch.gt_depth)
        if teach.depth is not None:
            d = d + 0.5 * depth_loss(out.log_depth, None, teach.depth)
        losses["depth"] = d
    if out.heatmap is not None and lc.detection > 0:
        losses["detection"] = detection_loss(out, batch.detection, teach.heatmap)
    if out.segmentation_logits is not None and lc.segmentation > 0:
        losses["segmentation"] = torch.nn.functional.cross_entropy(out.segmentation_logits.float(), batch.segmentation)
    if lang.color_logits is not None and lc.color > 0 and (batch.color_labels >= 0).any():
        losses["color"] = torch.nn.functional.cross_entropy(lang.color_logits.flatten(0, 1).float(),
                                                            batch.color_labels.flatten(), ignore_index=-1)
    return losses, out


def build_model_and_data(cfg: TrainConfig, data_dir: Path, tokenizer=None, teacher=None):
    if cfg.init_from:
        model, tokenizer = _initial_model(cfg.init_from, tokenizer)
        max_objects = model.config.max_objects
    else:
        max_objects = int(cfg.model.get("max_objects", 12))
    feats = load_features(data_dir, max_objects, cfg.max_train_samples, desc="train", proposal_share=cfg.proposal_mask_share)
    if cfg.init_from:
        if list(feats.categories) != list(model.config.categories) or list(feats.colors) != list(model.config.colors):
            raise ValueError(f"{cfg.init_from}: the model's categories/colours differ from {data_dir}'s")
    else:
        if tokenizer is None:
            texts = [q["question"] + " " + q["answer"] for qa in feats.qa for q in qa]
            tokenizer = tokenizer_for(texts, feats.categories, feats.colors)
        model = new_model(tokenizer, **{"categories": feats.categories, "colors": feats.colors, **cfg.model})
    c = model.config
    if cfg.language_only and c.use_roi_features:
        raise ValueError(f"{cfg.init_from or 'config'}: language_only needs use_roi_features: false (RoI features read images)")
    images = None if cfg.language_only else load_images(data_dir, c.image_width, c.image_height, feats.categories,
                                                         cfg.max_train_samples, desc="train")
    return model, tokenizer, TrainingData(feats, images, tokenizer, c, teacher, load_mentions(data_dir))


def _initial_model(path: str, tokenizer=None):
    """A saved model to continue from; a teacher's tokenizer must be the model's own."""
    from spatial_vlm_ros.inference.engine import load_model

    model, own = load_model(path)
    if tokenizer is not None and tokenizer.get_vocab() != own.get_vocab():
        raise ValueError(f"{path}: its tokenizer differs from the teacher's")
    return model.train(), own


def val_data(cfg: TrainConfig, val_dir: Optional[Path], model: SpatialVLM, tokenizer) -> Optional[TrainingData]:
    if val_dir is None:
        return None
    c = model.config
    feats = load_features(val_dir, c.max_objects, cfg.max_val_samples, desc="val")
    images = None if cfg.language_only else load_images(val_dir, c.image_width, c.image_height, feats.categories,
                                                        cfg.max_val_samples, desc="val")
    return TrainingData(feats, images, tokenizer, c, mentions=load_mentions(val_dir))


def train(cfg: TrainConfig, data_dir: Path | str, out_dir: Path | str, val_dir: Path | str | None = None,
          teacher=None, tokenizer=None, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train a SpatialVLM on `data_dir`; with `teacher` (a PrecomputedTeacher) its soft targets join
    the ground truth. Saves the final model to `out_dir` and a resumable checkpoint in out_dir/checkpoint."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if teacher is not None and tokenizer is None:
        tokenizer = teacher.tokenizer
    model, tokenizer, data = build_model_and_data(cfg, Path(data_dir), tokenizer, teacher)
    val = val_data(cfg, Path(val_dir) if val_dir else None, model, tokenizer)
    weighting = TaskWeighting(TASKS, cfg.loss.weighting, {t: getattr(cfg.loss, t) for t in TASKS})

    lm_params = [p for n, p in model.named_parameters() if n.startswith("language_head.")]
    other = [p for n, p in model.named_parameters() if not n.startswith("language_head.")]
    optimizer = torch.optim.AdamW([
        {"params": other, "lr": cfg.lr},
        {"params": lm_params, "lr": cfg.lm_lr},
        {"params": list(weighting.parameters()), "lr": 0.02, "weight_decay": 0.0},
    ], weight_decay=cfg.weight_decay)
    n = len(data)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    total_steps = cfg.max_steps if cfg.max_steps > 0 else max(1, int(cfg.epochs * steps_per_epoch))

    def lr_lambda(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model, weighting, optimizer, scheduler = accelerator.prepare(model, weighting, optimizer, scheduler)
    device = accelerator.device
    unwrapped_cfg = accelerator.unwrap_model(model).config

    ckpt = out_dir / "checkpoint"
    step, elapsed_before = 0, 0.0
    if resume and (ckpt / "trainer_state.pt").is_file():
        state = torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=False)
        accelerator.unwrap_model(model).load_state_dict(SpatialVLM.from_pretrained(str(ckpt)).state_dict())
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        accelerator.unwrap_model(weighting).load_state_dict(state["weighting"])
        step, elapsed_before = int(state["step"]), float(state.get("seconds", 0.0))

    rng = np.random.default_rng(cfg.seed + step)
    log_path = out_dir / "training_log.jsonl"
    log_f = log_path.open("a" if resume else "w")
    t_start = time.time()
    running: dict[str, float] = {}
    model.train()
    order = rng.permutation(n)
    pos = (step * cfg.batch_size) % n
    bar = tqdm(total=total_steps, initial=step, desc=f"train {out_dir.name}", unit="step", disable=not progress)
    while step < total_steps:
        if cfg.max_minutes > 0 and (time.time() - t_start + elapsed_before) / 60 > cfg.max_minutes:
            break
        if pos + cfg.batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos: pos + cfg.batch_size]
        pos += cfg.batch_size
        lang_idx = idx if unwrapped_cfg.use_roi_features else rng.choice(n, min(cfg.lang_batch_size, n), replace=False)
        images = not cfg.language_only and (unwrapped_cfg.use_roi_features or step % max(1, cfg.perception_every) == 0)
        batch = data.batch(idx, rng, cfg.depth_dropout, lang_indices=lang_idx, images=images,
                           max_questions=cfg.max_questions_per_frame).to(device)
        losses, _ = compute_losses(accelerator.unwrap_model(model), batch, cfg)
        total = weighting(losses)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(total)
        if cfg.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        for k, v in losses.items():
            fv = float(v.detach())
            running[k] = 0.9 * running.get(k, fv) + 0.1 * fv
        ft = float(total.detach())
        running["total"] = 0.9 * running.get("total", ft) + 0.1 * ft
        if step % cfg.log_every == 0 or step == total_steps:
            rec = {"step": step, "seconds": round(time.time() - t_start + elapsed_before, 1),
                   "losses": {k: round(v, 5) for k, v in running.items()},
                   "weights": {k: round(v, 4) for k, v in accelerator.unwrap_model(weighting).weights().items()}}
            log_f.write(json.dumps(rec) + "\n")
            log_f.flush()
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items() if k in ("total", "answer", "detection")})
        if cfg.eval_every and step % cfg.eval_every == 0 and val is not None:
            model.eval()
            acc = qa_accuracy(accelerator.unwrap_model(model), val)
            log_f.write(json.dumps({"step": step, "val": acc}) + "\n")
            model.train()
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            _checkpoint(accelerator, model, tokenizer, optimizer, scheduler, weighting, step,
                        time.time() - t_start + elapsed_before, ckpt)
        bar.update(1)
    bar.close()
    seconds = time.time() - t_start + elapsed_before
    unwrapped = accelerator.unwrap_model(model).eval()
    val_metrics = qa_accuracy(unwrapped, val) if val is not None else {}
    _checkpoint(accelerator, model, tokenizer, optimizer, scheduler, weighting, step, seconds, ckpt)
    save_model(unwrapped, tokenizer, out_dir)
    weights = accelerator.unwrap_model(weighting).weights()
    result = TrainResult(out_dir, step, seconds, sum(p.numel() for p in unwrapped.parameters()),
                         {k: round(v, 5) for k, v in running.items()}, weights, val_metrics)
    summary = {"steps": step, "seconds": round(seconds, 1), "parameters": result.parameters,
               "final_losses": result.final_losses, "task_weights": weights, "val": val_metrics,
               "loss_weighting": cfg.loss.weighting, "hidden_cot_k": unwrapped.config.hidden_cot_k,
               "config": cfg.to_dict(), "teacher": getattr(teacher, "source", None), "device": _device_name(accelerator)}
    (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    log_f.close()
    return result


def _checkpoint(accelerator, model, tokenizer, optimizer, scheduler, weighting, step, seconds, ckpt: Path) -> None:
    save_model(accelerator.unwrap_model(model), tokenizer, ckpt)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "weighting": accelerator.unwrap_model(weighting).state_dict(), "step": step, "seconds": seconds},
               ckpt / "trainer_state.pt")


def load_tokenizer_of(model_dir: Path | str):
    return load_tokenizer(model_dir)


def _device_name(accelerator) -> str:
    """What the run trained on, for the report ("cuda: NVIDIA H100 80GB HBM3", "cpu")."""
    device = accelerator.device
    return f"cuda: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else device.type
