"""A BERT-style WordPiece tokenizer (Devlin et al. 2019) trained here on a task's texts, saved as a
Hugging Face tokenizer folder, so a text task without a pretrained teacher still has one.

Lowercased, accents stripped, split on whitespace and punctuation as BERT does; special tokens
[PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4; a text is `[CLS] pieces [SEP]`. The folder holds
tokenizer.json, tokenizer_config.json and special_tokens_map.json and loads offline with
`transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)` (and so with
teachers.hf.tokenize). tokenizers and transformers are the `text` extra, imported inside.

Deterministic: the same texts give the same files. tokenizers' own WordPieceTrainer is not (it
numbers the `##` pieces in hash-map order, and ties between merges follow those numbers:
huggingface/tokenizers#1794), so the vocabulary is learnt as WordPieceTrainer learns it (BPE
merges, whose pieces become the WordPiece vocabulary) but with each character after a word's
first one written as a private-use character of its own: every piece is then made of alphabet
characters, which tokenizers numbers in sorted order, and plain BPE training is deterministic.
The pieces are turned back into `word` / `##piece` form afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edgedistill import atomic
from edgedistill.errors import MissingExtraError, UserInputError

log = logging.getLogger(__name__)

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)  # ids 0-4, in this order
CONTINUATION = "##"  # prefix of a piece that continues a word
MAX_LENGTH = 512  # model_max_length the folder declares
MIN_FREQUENCY = 2  # a merge seen once in the texts is not worth a vocabulary entry
MAX_WORD_CHARS = 100  # a longer word is one [UNK], as in BERT
PRIVATE_USE = 0xF0000  # supplementary private use area A: where continuation marks start


def train_wordpiece(
    texts: Sequence[str],
    folder: str | Path,
    vocab_size: int = 4000,
    max_length: int = MAX_LENGTH,
) -> Path:
    """Train a WordPiece vocabulary of at most `vocab_size` tokens on `texts` and save it as a
    Hugging Face tokenizer folder (created if needed; its files replaced); returns the folder."""
    if not texts:
        raise UserInputError("a WordPiece tokenizer needs at least one text to train on")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise UserInputError(f"vocab_size {vocab_size}: must be over {len(SPECIAL_TOKENS)}")
    try:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    except ImportError:
        raise MissingExtraError("tokenizers", "text", "training a WordPiece tokenizer") from None

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = [
        [word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))]
        for text in texts
    ]
    vocab = _learn_vocabulary(words, vocab_size)

    tokenizer = Tokenizer(
        models.WordPiece(
            vocab=vocab,
            unk_token=UNK,
            continuing_subword_prefix=CONTINUATION,
            max_input_chars_per_word=MAX_WORD_CHARS,
        )
    )
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    out = Path(folder).expanduser()
    atomic.write_text(out / "tokenizer.json", tokenizer.to_str(pretty=True))
    atomic.write_json(out / "tokenizer_config.json", _tokenizer_config(max_length))
    atomic.write_json(
        out / "special_tokens_map.json",
        {
            "pad_token": PAD,
            "unk_token": UNK,
            "cls_token": CLS,
            "sep_token": SEP,
            "mask_token": MASK,
        },
    )
    log.info("WordPiece tokenizer: %d tokens from %d texts -> %s", len(vocab), len(texts), out)
    return out


def _learn_vocabulary(words: list[list[str]], vocab_size: int) -> dict[str, int]:
    """WordPiece vocabulary (token -> id, special tokens first) learnt by BPE merges over the
    pre-tokenized words, each continuing character marked by a private-use stand-in."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from tokenizers.trainers import BpeTrainer

    seen = {char for text in words for word in text for char in word}
    continuing = sorted({char for text in words for word in text for char in word[1:]})
    mark = dict(zip(continuing, _free_characters(seen), strict=False))
    plain = {marked: char for char, marked in mark.items()}

    def marked(word: str) -> str:
        return word[0] + "".join(mark[char] for char in word[1:])

    bpe = Tokenizer(models.BPE(unk_token=UNK))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=MIN_FREQUENCY,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    lines = (" ".join(marked(word) for word in text) for text in words)
    bpe.train_from_iterator(lines, trainer=trainer, length=len(words))
    vocab: dict[str, int] = {}
    for token, _ in sorted(bpe.get_vocab().items(), key=lambda item: item[1]):
        if token in SPECIAL_TOKENS:
            piece = token
        elif token[0] in plain:
            piece = CONTINUATION + "".join(plain[char] for char in token)
        else:
            piece = token[0] + "".join(plain[char] for char in token[1:])
        vocab.setdefault(piece, len(vocab))
    return vocab


def _free_characters(taken: set[str]) -> Iterator[str]:
    """Private-use characters, in order, that none of the texts holds."""
    for code in range(PRIVATE_USE, 0x110000):
        if chr(code) not in taken:
            yield chr(code)


def _tokenizer_config(max_length: int) -> dict[str, Any]:
    """What transformers reads to wrap tokenizer.json: a fast tokenizer with BERT's tokens."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "padding_side": "right",
        "truncation_side": "right",
        "do_lower_case": True,
        "pad_token": PAD,
        "unk_token": UNK,
        "cls_token": CLS,
        "sep_token": SEP,
        "mask_token": MASK,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
    }
