"""(b) Any transformers image-text-to-text model (LLaVA, Qwen2-VL, ...) from a local folder.

It answers every question of a split with greedy decoding; its answer text and the top-k
log-probabilities of each generated token are written in the precomputed format. Its tokenizer
differs from the student's, so distillation is sequence-level (tokens that are student words still
give a soft distribution)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from spatial_vlm_training.data.sample import iter_samples

from .precomputed import TEACHER_FORMAT

SUBWORD_MARKERS = ("\u2581", "\u0120")  # sentencepiece and byte-level BPE word-start markers
CLIP_MEAN = np.array([0.4815, 0.4578, 0.4082], np.float32)
CLIP_STD = np.array([0.2686, 0.2613, 0.2758], np.float32)


def _load_text_tokenizer(path: Path):
    """The tokenizer file itself: AutoTokenizer next to a model config may rebuild a different class."""
    from transformers import PreTrainedTokenizerFast

    file = path / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing (the teacher's tokenizer)")
    return PreTrainedTokenizerFast(tokenizer_file=str(file))


class HFVLMTeacher:
    def __init__(self, path: Path | str, device: str = "cpu"):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.path = Path(path)
        try:
            self.model = AutoModelForImageTextToText.from_pretrained(str(self.path)).eval()
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{self.path}: cannot load an image-text-to-text model ({exc})") from exc
        try:
            self.processor = AutoProcessor.from_pretrained(str(self.path))
            self.text_tokenizer = self.processor.tokenizer
        except (ImportError, OSError, ValueError, KeyError, TypeError):
            # Image processors need torchvision/PIL; without them LLaVA-style models are fed here.
            self.processor = None
            self.text_tokenizer = _load_text_tokenizer(self.path)
        self.device = torch.device("cuda" if device.startswith("cuda") and torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.tokenizer = None  # not the student's vocabulary
        self.source = f"{type(self.model).__name__} ({self.path})"

    def prompt(self, question: str, image_token: str = "<image>") -> str:
        return f"USER: {image_token}\n{question} Answer in a few words. ASSISTANT:"

    def inputs(self, rgb, question: str) -> dict:
        if self.processor is not None:
            token = getattr(self.processor, "image_token", "<image>")
            return dict(self.processor(images=rgb, text=self.prompt(question, token), return_tensors="pt"))
        cfg = self.model.config
        vision = cfg.vision_config
        size, patch = int(vision.image_size), int(vision.patch_size)
        n_tokens = (size // patch) ** 2 + (1 if getattr(cfg, "vision_feature_select_strategy", "default") == "full" else 0)
        image_token = self.text_tokenizer.convert_ids_to_tokens(int(cfg.image_token_id))
        ids = self.text_tokenizer(self.prompt(question, image_token * n_tokens), return_tensors="pt")
        img = cv2.resize(np.asarray(rgb, np.uint8), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        img = (img - CLIP_MEAN) / CLIP_STD
        return {"input_ids": ids["input_ids"], "attention_mask": ids["attention_mask"],
                "pixel_values": torch.from_numpy(img).permute(2, 0, 1)[None].float()}

    @torch.inference_mode()
    def answer(self, rgb, question: str, max_new_tokens: int = 8, top_k: int = 8) -> tuple[str, list]:
        inputs = {k: v.to(self.device) for k, v in self.inputs(rgb, question).items()}
        gen = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, output_scores=True,
                                  return_dict_in_generate=True)
        new = gen.sequences[0, inputs["input_ids"].shape[1]:]
        tok = self.text_tokenizer
        text = tok.decode(new, skip_special_tokens=True).strip()
        steps = []
        for scores in gen.scores:
            lp = scores[0].float().log_softmax(-1)
            top = lp.topk(min(top_k, lp.shape[-1]))
            steps.append([[_clean(tok.convert_ids_to_tokens(int(i))), round(float(v), 4)]
                          for i, v in zip(top.indices, top.values, strict=False)])
        return text, steps

    def dump(self, split_dir: Path | str, out_dir: Path | str, student_tokenizer=None, limit: int = 0,
             max_new_tokens: int = 8, top_k: int = 8) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        samples = list(iter_samples(split_dir, limit or None))
        with (out / "answers.jsonl").open("w") as f:
            for s in tqdm(samples, desc="HF teacher answers", unit="frame"):
                rgb = s.load_rgb()
                for q in s.qa:
                    text, steps = self.answer(rgb, q.question, max_new_tokens, top_k)
                    f.write(json.dumps({"sample_id": s.id, "question": q.question, "answer": text,
                                        "top_logprobs": steps}) + "\n")
        (out / "teacher_meta.json").write_text(json.dumps({"format": TEACHER_FORMAT, "teacher": self.source,
                                                           "top_k": top_k, "split": str(split_dir)}, indent=1))
        return out


def _clean(token: str) -> str:
    for m in SUBWORD_MARKERS:
        token = token.replace(m, "")
    return token.lower()
