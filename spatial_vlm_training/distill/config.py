"""YAML training configs -> typed dataclasses (one for the model, one for the run)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


@dataclass
class LossConfig:
    weighting: str = "uncertainty"  # uncertainty | fixed
    answer: float = 1.0
    depth: float = 1.0
    detection: float = 1.0
    segmentation: float = 1.0
    color: float = 1.0
    feature: float = 0.0  # feature distillation (student encoder tokens vs teacher's), 0 = off
    temperature: float = 2.0  # answer-token KL temperature
    soft_answer_weight: float = 0.5  # share of the answer loss from the teacher's distribution
    soft_only_where_teacher_right: bool = True  # no KL on answers the teacher gets wrong


@dataclass
class TrainConfig:
    model: dict[str, Any] = field(default_factory=dict)  # SpatialVLMConfig keyword arguments
    loss: LossConfig = field(default_factory=LossConfig)
    batch_size: int = 16  # frames per perception step
    lang_batch_size: int = 32  # frames whose questions form one language step (without RoI features)
    perception_every: int = 1  # run the image heads every n-th step
    max_questions_per_frame: int = 6  # questions per frame in one language step, 0 = all
    teacher_dense_frames: int = 600  # frames the embedded teacher labels with depth + detections (answers: all)
    lr: float = 2e-3
    lm_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    epochs: float = 4.0
    max_steps: int = 0  # > 0 overrides epochs
    max_minutes: float = 0.0  # > 0 stops training after this wall time (CPU budgets)
    depth_dropout: float = 0.3  # share of samples trained without measured depth
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 20
    eval_every: int = 0  # 0 = at the end only
    checkpoint_every: int = 200
    max_train_samples: int = 0  # 0 = all
    max_val_samples: int = 200
    num_threads: int = 0  # torch CPU threads, 0 = default
    proposal_mask_share: float = 0.0  # share of frames whose objects take proposal masks (distill/proposal_masks.py)
    language_only: bool = False  # train only the language path: no images are loaded, image heads stay as they are
    init_from: str = ""  # start from this saved model (its own config; `model:` must then be empty)

    @classmethod
    def from_yaml(cls, path: Path | str, overrides: dict[str, Any] | None = None) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: config file not found")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        raw.update(overrides or {})
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}")
        loss_raw = raw.get("loss", {}) or {}
        loss_known = {f.name for f in fields(LossConfig)}
        bad = sorted(set(loss_raw) - loss_known)
        if bad:
            raise ValueError(f"{source}: unknown loss keys {bad}")
        cfg = cls(**{k: v for k, v in raw.items() if k != "loss"}, loss=LossConfig(**loss_raw))
        if cfg.loss.weighting not in ("uncertainty", "fixed"):
            raise ValueError(f"{source}: loss.weighting must be uncertainty or fixed, got {cfg.loss.weighting!r}")
        if cfg.batch_size < 1 or cfg.lr <= 0:
            raise ValueError(f"{source}: batch_size must be >= 1 and lr > 0")
        if not 0.0 <= cfg.proposal_mask_share <= 1.0:
            raise ValueError(f"{source}: proposal_mask_share must be in [0, 1], got {cfg.proposal_mask_share}")
        if cfg.init_from and cfg.model:
            raise ValueError(f"{source}: init_from takes the saved model's own config; remove the model: section")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
