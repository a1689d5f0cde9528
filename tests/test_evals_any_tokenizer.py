"""Every evaluation with a tokenizer that is not GPT-2's: a tiny byte-level BPE whose
``<|endoftext|>`` is id 0 (no BOS token), trained here, and a ConnectomeGPT of its vocabulary.

The BPE is so small that most words split into single bytes and the space before a word is
often a token of its own (``Ġ``), a case GPT-2 never produces; the character-offset word
alignment of Futrell2018 must still give every word a surprisal.
"""

import random

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from connectome_lib.evals.blimp import evaluate_blimp, load_blimp, sentence_request
from connectome_lib.evals.config import EvalConfig
from connectome_lib.evals.futrell2018 import evaluate_futrell2018, story_surprisals, word_token_map
from connectome_lib.evals.hellaswag import evaluate_hellaswag
from connectome_lib.evals.scoring import prefix_token_id
from connectome_lib.evals.tasks import TaskContext, run_task
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM

WORDS = ("the a man woman dog cat sat ran on in to of and house tree bird sang quickly slowly "
         "was were is are he she they it said that with for").split()


def train_tiny_bpe(trim_offsets: bool | None = None, vocab_size: int = 300) -> PreTrainedTokenizerFast:
    rnd = random.Random(0)
    texts = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 12))).capitalize() + "." for _ in range(400)]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    if trim_offsets is not None:
        tk.post_processor = processors.ByteLevel(trim_offsets=trim_offsets)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


@pytest.fixture(scope="module")
def bpe():
    return train_tiny_bpe()


@pytest.fixture(scope="module")
def model(bpe):
    torch.manual_seed(0)
    return ConnectomeGPTForCausalLM(
        ConnectomeGPTConfig(vocab_size=len(bpe), n_layer=2, n_embd=64, n_head=2, block_size=128)
    ).eval()


def test_the_tokenizer_is_not_gpt2s(bpe):
    assert len(bpe) == 300 and bpe.eos_token_id == 0 and bpe.bos_token_id is None
    assert prefix_token_id(bpe) == 0
    assert "Ġ" in bpe.convert_ids_to_tokens(bpe("If you were Zxq.")["input_ids"])  # lone space tokens occur


def test_blimp_prefix_is_id_0_and_scores_match_a_forward_pass(bpe, model):
    req = sentence_request(bpe, "Many girls sang.")
    assert req.context_ids == (0,) and req.continuation_ids == tuple(bpe(" Many girls sang.")["input_ids"])
    res = evaluate_blimp(model, bpe, limit=1, progress=False)
    rec = load_blimp(limit=1)[0]
    ids = [0] + bpe(" " + rec["sentence_good"])["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    hand = sum(float(logp[t - 1, ids[t]]) for t in range(1, len(ids)))
    assert res.table["loglik_0"].iloc[0] == pytest.approx(hand, rel=1e-5)
    assert np.isfinite(res.table[["loglik_0", "loglik_1"]].to_numpy()).all() and 0 <= res.value("acc") <= 1


def test_hellaswag_is_finite(bpe, model):
    res = evaluate_hellaswag(model, bpe, limit=4, progress=False)
    assert np.isfinite(res.table[[f"loglik_{k}" for k in range(4)]].to_numpy()).all()
    assert all(np.isfinite(m.value) for m in res.metrics)


@pytest.mark.parametrize("trim_offsets", [None, True, False])
def test_futrell_word_alignment_with_byte_level_offsets(trim_offsets, model):
    tok = train_tiny_bpe(trim_offsets)
    words = ["If", "you", "were", "a", "Zxqwv's", "friend,", "\u201cquoted\u201d", "text."]
    ids, token_word = word_token_map(tok, words)
    assert token_word.tolist() == sorted(token_word.tolist())  # tokens in word order
    assert set(token_word.tolist()) == set(range(len(words)))  # every word gets tokens
    surprisal, n_tokens = story_surprisals(model, tok, words)
    assert (n_tokens > 0).all() and np.isfinite(surprisal).all()
    # the lone space token belongs to the word after it
    pieces = tok.convert_ids_to_tokens(ids)
    assert "Ġ" in pieces
    for t, p in enumerate(pieces):
        if p == "Ġ":
            assert token_word[t + 1] == token_word[t]


def test_futrell_every_word_gets_a_surprisal(bpe, model):
    res = evaluate_futrell2018(model, bpe, limit=1, progress=False)  # ~5,000 tokens > 128: sliding window
    t = res.table
    assert len(t) == 1073 and (t["n_tokens"] > 0).all() and np.isfinite(t["surprisal_bits"]).all()
    # official definition: only a word whose every token is unscored is left out; "If" is two bytes
    assert t["surprisal_official"].notna().sum() == res.metadata["n_words_official"] >= 1072
    for name in ("r", "r_official", "r_brainscore", "r_partial_length"):
        assert np.isfinite(res.value(name))


def test_every_task_runs(bpe, model):
    text = " ".join(random.Random(1).choice(WORDS) for _ in range(2000))
    val = np.array(bpe(text)["input_ids"] + [bpe.eos_token_id], dtype=np.uint16)
    cfg = EvalConfig(tasks=["perplexity", "mmlu", "tuckute2024", "language_units", "baselines"], limit=4,
                     brain_limit=40, futrell_limit=1, localizer_n_sentences=40, progress=False,
                     frequency_corpora=[], baseline_tasks=["tuckute2024"])
    ctx = TaskContext(bpe, cfg, val_tokens=val)
    for task in cfg.tasks:
        res = run_task(task, model, ctx)
        values = [m.value for m in res.metrics]
        assert values and np.isfinite(values).all(), task
