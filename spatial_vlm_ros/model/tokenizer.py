"""A word-level tokenizer trained locally (with `tokenizers`) on the question/answer text.

It is saved in a `tokenizer/` sub-folder of the model and always reloaded with
PreTrainedTokenizerFast: next to a Qwen2 config.json, AutoTokenizer would rebuild it as a
Qwen2Tokenizer with different ids."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS, ANS = "[PAD]", "[UNK]", "[BOS]", "[EOS]", "[ANS]"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS, ANS]
TOKENIZER_SUBDIR = "tokenizer"


def train_tokenizer(texts: Iterable[str], extra_words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1)
    # The vocabulary must hold every answer word ("yes", "no", colours, categories) even when a
    # small training split never says one of them.
    base = ["yes no the floor is near touching on far from what which object", *extra_words]
    tok.train_from_iterator([*base, *texts], trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK, bos_token=BOS,
                                   eos_token=EOS, additional_special_tokens=[ANS])


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, model_dir: Path | str) -> None:
    tokenizer.save_pretrained(str(Path(model_dir) / TOKENIZER_SUBDIR))


def load_tokenizer(model_dir: Path | str) -> PreTrainedTokenizerFast:
    path = Path(model_dir) / TOKENIZER_SUBDIR / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (a model folder needs {TOKENIZER_SUBDIR}/tokenizer.json)")
    try:
        return wrap(Tokenizer.from_file(str(path)))
    except Exception as exc:  # tokenizers raises its own Exception type for bad JSON
        raise ValueError(f"{path}: corrupt tokenizer ({exc})") from exc


def word_ids(tokenizer: PreTrainedTokenizerFast, phrase: str) -> list[int]:
    return tokenizer(phrase, add_special_tokens=False)["input_ids"]
