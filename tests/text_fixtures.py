"""Texts and Hugging Face folders the text tests build (never downloaded): cue-word texts whose
label one word tells, a BERT tokenizer over their words, and a tiny BERT encoder saved as a
sentence-transformers folder."""

from __future__ import annotations

import json
import random
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CUES = {"negative": "awful", "neutral": "fine", "positive": "great"}
FILLER = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "mat", "tree", "today", "very"]


def cue_texts(count: int, seed: int) -> list[dict]:
    """{"text", "label"} rows: filler words with the label's cue word at a random place."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = list(CUES)[index % len(CUES)]
        words = rng.choices(FILLER, k=rng.randint(3, 9))
        words.insert(rng.randint(0, len(words)), CUES[label])
        rows.append({"text": " ".join(words), "label": label})
    return rows


def cue_word_tokenizer(folder: Path):
    """A BERT WordPiece tokenizer over the cue-word texts' words, written to `folder`."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + FILLER + list(CUES.values())) + "\n")
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def sentence_encoder(folder: Path, normalize: bool = True, hidden: int = 32, sub: str = "") -> Path:
    """A tiny seeded BERT encoder (random weights) with the cue-word tokenizer, saved as
    sentence-transformers saves one: modules.json, mean pooling, optionally Normalize; the
    model and tokenizer in `sub` (older sentence-transformers: 0_Transformer)."""
    import torch
    import transformers

    tokenizer = cue_word_tokenizer(folder.parent / f"{folder.name}-vocabulary")
    torch.manual_seed(0)
    encoder = transformers.BertModel(
        transformers.BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=64,
        )
    ).eval()
    encoder.save_pretrained(folder / sub)
    tokenizer.save_pretrained(folder / sub)
    sentence_transformers_files(folder, sub, "mean", normalize, hidden)
    return folder


def sentence_transformers_files(
    folder: Path, sub: str, pooling: str, normalize: bool, width: int
) -> None:
    """modules.json (Transformer in `sub`, Pooling, optionally Normalize) and the Pooling
    module's config.json, as sentence-transformers writes them."""
    models = "sentence_transformers.models."
    modules = [
        {"idx": 0, "name": "0", "path": sub, "type": models + "Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": models + "Pooling"},
    ]
    if normalize:
        (folder / "2_Normalize").mkdir()
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": models + "Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    flags = {
        "word_embedding_dimension": width,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(flags))
