"""Special tokens, offsets, streaming decode and vocabulary surgery, as users use them."""

from __future__ import annotations

import json
import random
import unicodedata
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edge_cases as ec
from bytepiece_rs import Tokenizer, Trainer

SPECIALS = ["<|endoftext|>", "<s>", "<|im_start|>"]


@pytest.fixture(scope="module")
def sample_lines(shared_dir):
    lines = []
    for lang in ("zh", "en", "code"):
        lines += [x for x in ec.read_sample(lang, shared_dir).split("\n")[:1500] if x.strip()]
    return lines


@pytest.fixture(scope="module")
def trained(sample_lines, tmp_path_factory):
    """A model trained with special tokens (one of them, "<s>", is also common text in code)."""
    lines = sample_lines + ["<s>x</s> <s>y</s>"] * 200
    trainer = Trainer(order=4, max_vocab_size=[3000, 1500], min_count=2, special_tokens=SPECIALS, progress=False)
    trainer.train(lines)
    out = tmp_path_factory.mktemp("special") / "sp.model"
    trainer.save(out)
    return out, lines


@pytest.fixture(scope="module")
def default():
    return Tokenizer()


# -- 1. special tokens -----------------------------------------------------------------------


def test_trainer_reserves_special_tokens_before_the_pieces(trained):
    path, _ = trained
    tok = Tokenizer(f"{path}.3000")
    assert tok.special_tokens == {t: 3 + i for i, t in enumerate(SPECIALS)}
    assert tok.vocab_size <= 3000
    raw = json.loads(open(f"{path}.3000", encoding="utf-8").read())
    by_id = {v[0]: v for v in raw.values()}
    assert by_id[3] == [3, "<|endoftext|>", "special", 0] and by_id[4] == [4, "<s>", "special", 0]
    # every other entry keeps the original's [id, text, count] with a positive count
    assert all(len(v) == 3 and v[2] > 0 for i, v in by_id.items() if i > 5)
    with pytest.raises(ValueError, match="at least 262"):
        Trainer(max_vocab_size=261, special_tokens=["<a>", "<b>", "<c>"])
    with pytest.raises(ValueError, match="shorter than 2 bytes"):
        Trainer(special_tokens=["x"])
    with pytest.raises(ValueError, match="twice"):
        Trainer(special_tokens=["<a>", "<a>"])


def test_segmentation_never_produces_special_tokens(trained):
    path, lines = trained
    tok = Tokenizer(f"{path}.3000")
    special_ids = set(tok.special_tokens.values())
    for alpha in (-1, 0, 0.1, 1):
        for line in lines[-3:] + ["<|endoftext|> and <s>"]:
            ids = tok.encode(line, alpha=alpha, disallowed_special=())
            assert not special_ids & set(ids)
            assert tok.decode(ids) == unicodedata.normalize("NFC", line)


def test_tiktoken_rules(trained):
    tok = Tokenizer(f"{trained[0]}.3000")
    text = "a<s>b<|endoftext|>"
    with pytest.raises(ValueError, match="special token '<s>'.*allowed_special"):
        tok.encode(text)
    with pytest.raises(ValueError, match="'<\\|endoftext\\|>'"):
        tok.encode(text, allowed_special={"<s>"})  # the other one is still disallowed
    ids = tok.encode(text, allowed_special="all")
    a, b = tok.encode("a"), tok.encode("b")
    assert ids == a + [4] + b + [3]
    assert tok.encode(text, allowed_special={"<s>"}, disallowed_special=()) == a + [4] + tok.encode(
        "b<|endoftext|>", disallowed_special=()
    )
    ordinary = tok.encode(text, disallowed_special=())
    assert 3 not in ordinary and 4 not in ordinary and tok.decode(ordinary) == text
    assert tok.decode(ids) == text  # a special id decodes to its text
    assert tok.tokenize(text, allowed_special="all")[1] == b"<s>"
    assert tok.encode(text.encode(), allowed_special="all") == ids  # bytes input too
    with pytest.raises(ValueError, match="not a special token"):
        tok.encode("x", allowed_special={"<nope>"})
    with pytest.raises(TypeError):
        tok.encode("x", allowed_special="<s>")
    # batches follow the same rules, with the same ids as one by one
    texts = [text, "plain", "<|im_start|>user\nhi<|endoftext|>", ""]
    one = [tok.encode(t, add_bos=True, add_eos=True, allowed_special="all") for t in texts]
    assert tok.encode_batch(texts, add_bos=True, add_eos=True, allowed_special="all") == one
    flat, offsets = tok.encode_batch_numpy(texts, add_bos=True, add_eos=True, allowed_special="all")
    assert [flat[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))] == one
    with pytest.raises(ValueError):
        tok.encode_batch(texts)


def test_a_model_without_special_tokens_never_raises(default):
    assert default.special_tokens == {}
    assert default.encode("<|endoftext|>") == default.encode("<|endoftext|>", disallowed_special=())
    with pytest.raises(ValueError, match="not a special token"):
        default.encode("x", allowed_special={"<|endoftext|>"})


def test_add_special_tokens_and_save(default, tmp_path):
    tok = Tokenizer()
    n = tok.vocab_size
    assert tok.add_special_tokens(["<|im_start|>", "<|im_end|>"]) == 2
    assert tok.add_special_tokens(["<|im_start|>"]) == 0  # already there
    assert tok.special_tokens == {"<|im_start|>": n, "<|im_end|>": n + 1}
    with pytest.raises(ValueError, match="ordinary piece"):
        tok.add_special_tokens(["the"])
    # ordinary text is encoded as before (the total count, hence every score, is unchanged)
    for line in ec.edge_cases().values():
        assert tok.encode(line, disallowed_special=()) == default.encode(line)
    tok.save(tmp_path / "m.model")
    again = Tokenizer(tmp_path / "m.model")
    assert again.special_tokens == tok.special_tokens
    again.save(tmp_path / "m2.model")
    assert (tmp_path / "m.model").read_bytes() == (tmp_path / "m2.model").read_bytes()


@pytest.mark.oracle
def test_the_original_loads_a_model_with_special_tokens(oracle, trained):
    """The original reads a special token's last item, 0, as its count: score log 0 = -inf, so
    its segmentation never chooses it, and its ids equal ours with ``disallowed_special=()``."""
    path, lines = trained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy: log(0)
        theirs = oracle.Tokenizer(f"{path}.3000")
    ours = Tokenizer(f"{path}.3000")
    assert theirs.vocab_size == ours.vocab_size
    for line in lines[::50] + ["<s>x</s> <|endoftext|>"]:
        assert [int(i) for i in theirs.encode(line)] == ours.encode(line, disallowed_special=())
    assert theirs.decode([3, 4]) == "<|endoftext|><s>"


# -- 2. offsets --------------------------------------------------------------------------------


def check_spans(tok, text, ids, spans):
    """The spans cover ``text`` in order; each holds its piece (in NFC); neighbours overlap only
    on a character they share."""
    assert len(spans) == len(ids)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s0 <= s1 <= e0 <= e1
    for i, (s, e) in zip(ids, spans):
        piece = tok.id_to_piece(i)
        assert s < e
        assert piece in unicodedata.normalize("NFC", text[s:e]).encode()


def test_offsets_on_real_text(default, sample_lines):
    for line in sample_lines[::37]:
        ids, spans = default.encode_with_offsets(line)
        assert ids == default.encode(line)
        check_spans(default, line, ids, spans)
        if line.isascii():
            assert "".join(line[s:e] for s, e in spans) == line


def test_offsets_of_split_characters_nfc_and_specials(default):
    # 😀 is 4 bytes; pieces inside it all get its span
    ids, spans = default.encode_with_offsets("a😀")
    assert spans[0] == (0, 1) and all(sp == (1, 2) for sp in spans[1:])
    # "e" + combining acute becomes "é": its pieces span both characters of the input
    text = "He\u0301llo"
    ids, spans = default.encode_with_offsets(text)
    assert ids == default.encode(text)
    check_spans(default, text, ids, spans)
    assert any(sp == (1, 3) for sp in spans)
    # bos / eos, bytes input, sampling
    ids, spans = default.encode_with_offsets("abc", add_bos=True, add_eos=True)
    assert ids[0] == 1 and ids[-1] == 2 and spans[0] == (0, 0) and spans[-1] == (3, 3)
    ids, spans = default.encode_with_offsets("é世".encode())
    assert spans[0][0] == 0 and spans[-1][1] == 5
    ids, spans = default.encode_with_offsets("sampling works too", alpha=0.1)
    check_spans(default, "sampling works too", ids, spans)
    tok = Tokenizer()
    tok.add_special_tokens(["<|eot|>"])
    ids, spans = tok.encode_with_offsets("ab<|eot|>ç", allowed_special="all")
    assert spans[ids.index(tok.special_tokens["<|eot|>"])] == (2, 9)
    check_spans(tok, "ab<|eot|>ç", ids, spans)


def test_offsets_follow_hf_tokenizers_conventions(default, sample_lines, tmp_path):
    """HF ``tokenizers`` gives byte-level pieces character offsets into the input, the whole
    character for pieces inside one; with our HF export both agree wherever NFC changes
    nothing (where it does, HF can leave a gap, e.g. the combining mark of "e\u0301")."""
    tokenizers = pytest.importorskip("tokenizers")
    default.convert_to_hf(tmp_path / "tokenizer.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    checked = 0
    for line in sample_lines[::11] + ["a😀b", "x\u212bay", "日本語のテキスト"]:
        enc = hf.encode(line)
        ids, spans = default.encode_with_offsets(line)
        if enc.ids == ids and unicodedata.is_normalized("NFC", line):
            assert [tuple(o) for o in enc.offsets] == spans, line
            checked += 1
    assert checked > 100


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
    | st.lists(
        st.sampled_from(
            [
                "e",
                "\u0301",
                "\u0323",
                "\u212b",
                "가",
                "\u1100",
                "\u1161",
                "\u11a8",
                "😀",
                "\n",
                " ",
                "A",
                "\u030a",
                "ﬁ",
                "\u0344",
            ]
        ),
        max_size=20,
    ).map("".join)
)
def test_offsets_property(default, text):
    ids, spans = default.encode_with_offsets(text)
    assert ids == default.encode(text)
    if ids:
        check_spans(default, text, ids, spans)
    else:
        assert text == ""


# -- 3. streaming decode -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=0, max_value=63955), max_size=30))
def test_stream_decoder_equals_decode(default, ids):
    stream = default.decode_stream()
    parts = [stream.step(i) for i in ids]
    parts.append(stream.flush())
    assert "".join(parts) == default.decode(ids)
    # feeding several at once gives the same text
    stream = default.decode_stream()
    assert stream.feed(ids[:7]) + stream.feed(ids[7:]) + stream.flush() == default.decode(ids)


def test_stream_decoder_never_emits_a_split_character(default):
    text = "生成式模型 😀 émoji ✨"
    ids = default.encode(text)
    stream = default.decode_stream()
    out = []
    for i in ids:
        piece = stream.step(i)
        assert "\ufffd" not in piece
        out.append(piece)
    assert "".join(out) == text
    # a character cut between pieces comes out whole, with its last piece
    emoji = default.encode("😀")
    assert len(emoji) > 1
    stream = default.decode_stream()
    assert [stream.step(i) for i in emoji] == [""] * (len(emoji) - 1) + ["😀"]


# -- 4. vocabulary surgery ---------------------------------------------------------------------


def test_add_pieces_with_counts_and_from_text(default, tmp_path):
    tok = Tokenizer()
    term = "Pneumonoultramicroscopicsilicovolcanoconiosis"
    assert len(tok.tokenize(term)) > 3
    [new_id] = tok.add_pieces([term], counts=1000)
    assert new_id == default.vocab_size and tok.tokenize(term) == [term.encode()]
    assert tok.encode(term) == [new_id]
    tok.save(tmp_path / "m.model")
    assert Tokenizer(tmp_path / "m.model").encode(term) == [new_id]
    # counts estimated from domain text
    tok2 = Tokenizer()
    domain = ["The kinase inhibitor imatinib binds BCR-ABL. Imatinib resistance arises."] * 20
    ids = tok2.add_pieces(["imatinib", " kinase"], texts=domain)
    assert ids == [default.vocab_size, default.vocab_size + 1]
    assert ids[0] in tok2.encode("imatinib works") or ids[1] in tok2.encode("a kinase")
    count = tok2.to_dict()[next(k for k, v in tok2.to_dict().items() if v[0] == ids[0])][2]
    total = sum(v[-1] for v in default.to_dict().values())
    tokens = sum(len(x) for x in default.encode_batch(domain))
    assert count == round(total * 20 / tokens)
    with pytest.raises(ValueError, match="does not occur"):
        Tokenizer().add_pieces(["zzzqqq"], texts=domain)
    with pytest.raises(ValueError, match="already in the vocabulary"):
        Tokenizer().add_pieces(["the"], counts=5)
    with pytest.raises(ValueError, match="one of the two"):
        Tokenizer().add_pieces(["abc"])
    with pytest.raises(ValueError, match="positive"):
        Tokenizer().add_pieces(["abcxyz"], counts=0)


def test_remove_pieces_renumbers(default):
    tok = Tokenizer()
    the = tok.piece_to_id("the")
    tok.remove_pieces(["the"])
    assert tok.vocab_size == default.vocab_size - 1
    with pytest.raises(KeyError):
        tok.piece_to_id("the")
    # the piece after it moved down by one; pieces before kept their ids
    assert tok.id_to_piece(the) == default.id_to_piece(the + 1)
    assert tok.id_to_piece(the - 1) == default.id_to_piece(the - 1)
    text = "the theory of other things"
    assert tok.decode(tok.encode(text)) == text
    with pytest.raises(ValueError, match="single byte"):
        tok.remove_pieces([b"a"])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.remove_pieces(["qqqzzzxxx"])


def test_shrink_equals_training_with_the_smaller_size(trained, tmp_path):
    path, _ = trained
    big = Tokenizer(f"{path}.3000")
    big.shrink(1500)
    big.save(tmp_path / "shrunk.model")
    assert (tmp_path / "shrunk.model").read_bytes() == open(f"{path}.1500", "rb").read()
    with pytest.raises(ValueError, match="at least"):
        Tokenizer().shrink(100)


def test_shrink_a_released_model(default):
    tok = Tokenizer()
    tok.shrink(20000)
    assert tok.vocab_size <= 20000
    rng = random.Random(5)
    for text in rng.sample(list(ec.edge_cases().values()), 10):
        assert tok.decode(tok.encode(text)) == unicodedata.normalize("NFC", text)
    # fewer pieces, so at least as many tokens
    text = " ".join(ec.edge_cases().values())
    assert len(tok.encode(text)) >= len(default.encode(text))


def test_conversions_keep_special_tokens(trained, tmp_path):
    tok = Tokenizer(f"{trained[0]}.3000")
    text = "<|im_start|>user\nHello <s> world<|endoftext|>"
    tokenizers = pytest.importorskip("tokenizers")
    tok.convert_to_hf(tmp_path / "tokenizer.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert hf.encode(text).ids == tok.encode(text, allowed_special="all")
    assert hf.decode(tok.encode(text, allowed_special="all"), skip_special_tokens=True) == "user\nHello  world"
    spm = pytest.importorskip("sentencepiece")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unused = tok.convert_to_sentencepiece(tmp_path / "m.spm")
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "m.spm"))
    # "<s>" is SentencePiece's own name for id 1: that special token is a placeholder
    assert 4 in unused and sp.is_unused(4)
    assert sp.id_to_piece(3) == "<|endoftext|>" and sp.is_control(3) and sp.is_control(5)
    plain = "Hello world, hello again"
    assert sp.encode(plain) == tok.encode(plain)


def test_cli_allow_special(trained, tmp_path):
    import subprocess
    import sys

    model = f"{trained[0]}.3000"
    tok = Tokenizer(model)
    text = "hi<s>there"

    def run(*extra):
        return subprocess.run(
            [sys.executable, "-m", "bytepiece_rs", "encode", "-m", model, "--text", text, *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )

    as_text = run()
    assert as_text.returncode == 0 and as_text.stdout.split() == [
        str(i) for i in tok.encode(text, disallowed_special=())
    ]
    as_id = run("--allow-special", "<s>")
    assert as_id.stdout.split() == [str(i) for i in tok.encode(text, allowed_special="all")]
    bad = run("--allow-special", "<nope>")
    assert bad.returncode == 2 and "not a special token" in bad.stderr
    info = subprocess.run(
        [sys.executable, "-m", "bytepiece_rs", "info", "-m", model, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(info.stdout)["special_tokens"] == tok.special_tokens
