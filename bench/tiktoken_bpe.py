#!/usr/bin/env python3
"""tiktoken for the benchmarks: a `tiktoken.Encoding` built from a HuggingFace byte-level BPE.

tiktoken ships no trainer, and its released vocabularies (cl100k, o200k, ...) come from model
hubs, which the benchmarks may not download. So the benchmarks train a byte-level BPE with HF
`tokenizers` on the same corpus (bench/train.py's `hf-bpe` trainer: `ByteLevel(add_prefix_space=
False, use_regex=True)` pre-tokenizer, `initial_alphabet=ByteLevel.alphabet()`, i.e. all 256
bytes) and turn it into tiktoken's format here:

  * ranks: the 256 single bytes first (rank = byte value), then the result of each merge, in
    merge order (a merge whose result is already ranked is skipped);
  * HF's byte-level pieces are GPT-2's printable stand-ins for bytes (`bytepiece_rs.convert.byte_level_alphabet`);
    they are mapped back to the bytes they stand for;
  * pat_str: GPT-2's pre-tokenisation regex (the same as tiktoken's `r50k_base` and HF
    `ByteLevel(use_regex=True)`), so tiktoken splits the text exactly like the trained model;
  * no special tokens.

    python3 bench/tiktoken_bpe.py HF_TOKENIZER.json TEXT_FILE   # round trip + agreement with HF
"""

from __future__ import annotations

import json
import sys

from bytepiece_rs.convert import byte_level_alphabet

# GPT-2's pattern (tiktoken's r50k_base / p50k_base); HF ByteLevel(use_regex=True) uses the same.
GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _hf_bpe(path: str):
    """(model dict of HF's tokenizer.json at `path`, function piece -> bytes)."""
    with open(path, encoding="utf-8") as f:
        model = json.load(f)["model"]
    if model.get("type") != "BPE":
        raise ValueError("%s: not a BPE model (%s)" % (path, model.get("type")))
    back = {c: b for b, c in byte_level_alphabet().items()}

    def raw(piece: str) -> bytes:
        try:
            return bytes(back[c] for c in piece)
        except KeyError as e:
            raise ValueError("%s: piece %r is not byte-level (character %r)" % (path, piece, e.args[0])) from None

    return model, raw


def ranks_from_hf(path: str) -> dict:
    """mergeable_ranks (bytes -> rank) of the byte-level BPE in HF's tokenizer.json at `path`."""
    model, raw = _hf_bpe(path)

    ranks = {bytes([b]): b for b in range(256)}
    for m in model["merges"]:
        left, right = m.split(" ", 1) if isinstance(m, str) else m
        tok = raw(left) + raw(right)
        if tok not in ranks:
            ranks[tok] = len(ranks)
    return ranks


def encoding_from_hf(path: str, name: str = "hf-bytelevel-bpe"):
    """A tiktoken.Encoding with the ranks of `ranks_from_hf(path)`, GPT-2's pat_str and no
    special tokens."""
    import tiktoken

    return tiktoken.Encoding(name, pat_str=GPT2_PAT, mergeable_ranks=ranks_from_hf(path), special_tokens={})


def check(hf_path: str, docs: list) -> dict:
    """Round trip of tiktoken on `docs`, and how its tokens compare with HF's on the same model:
    {"docs", "bytes", "vocab", "tiktoken_tokens", "hf_tokens", "roundtrip_fail", "same_tokens_docs"};
    same_tokens_docs counts the documents cut into the same byte strings by both."""
    from tokenizers import Tokenizer

    enc = encoding_from_hf(hf_path)
    hf = Tokenizer.from_file(hf_path)
    model, raw = _hf_bpe(hf_path)
    hf_bytes = {i: raw(p) for p, i in model["vocab"].items()}
    ids_t = enc.encode_ordinary_batch(docs, num_threads=1)
    ids_h = [e.ids for e in hf.encode_batch(docs, add_special_tokens=False)]
    rank_bytes = enc.decode_single_token_bytes
    return {
        "docs": len(docs),
        "bytes": sum(len(d.encode("utf-8")) for d in docs),
        "vocab": enc.n_vocab,
        "tiktoken_tokens": sum(map(len, ids_t)),
        "hf_tokens": sum(map(len, ids_h)),
        "roundtrip_fail": sum(enc.decode_bytes(x) != d.encode("utf-8") for x, d in zip(ids_t, docs)),
        "same_tokens_docs": sum([rank_bytes(i) for i in a] == [hf_bytes[i] for i in b] for a, b in zip(ids_t, ids_h)),
    }


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_json", help="HF tokenizer.json of a byte-level BPE")
    ap.add_argument("text", help="text file; its blank-line separated paragraphs are the documents")
    a = ap.parse_args(argv)
    with open(a.text, encoding="utf-8") as f:
        docs = [d for d in f.read().split("\n\n") if d]
    r = check(a.hf_json, docs)
    print(json.dumps(r, indent=1))
    return 0 if r["roundtrip_fail"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
