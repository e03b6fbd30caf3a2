"""The generated sentence task, offline transformer loading, the cached prefix and the fine-tuning loop
(effcourse.mezo.text, .pretrained, .finetune)."""

import pytest
import torch

from effcourse.mezo.finetune import Encoded, finetune
from effcourse.mezo.pretrained import CachedPrefix, load_classifier, trainable_parameters
from effcourse.mezo.text import NEGATIVE, POSITIVE, WordTokenizer, encode, sentiment_task


def test_task_is_reproducible_disjoint_and_uses_negation():
    a, b = sentiment_task(64, 32, seed=0), sentiment_task(64, 32, seed=0)
    assert a.train_text == b.train_text and torch.equal(a.train_labels, b.train_labels)
    assert not set(a.train_text) & set(a.test_text)
    assert 0.3 < float(a.train_labels.float().mean()) < 0.7
    for s, y in zip(a.train_text, a.train_labels.tolist()):
        last = s.split(" but ")[-1].split()
        pos = last[-1] in POSITIVE
        assert last[-1] in POSITIVE + NEGATIVE
        assert y == int(pos != ("not" in last))
    with pytest.raises(ValueError, match="two_clause"):
        sentiment_task(two_clause=2.0)


def test_word_tokenizer_pads_and_masks():
    tok = WordTokenizer()
    enc = encode(tok, ["the movie was good", "the plot was not good but the cast was fun"])
    assert enc["input_ids"].shape == enc["attention_mask"].shape
    assert enc["input_ids"][0, 0] == 1 and int(enc["attention_mask"][0].sum()) == 6
    assert int((enc["input_ids"] == 3).sum()) == 0  # no unknown words


def _tiny():
    tok = WordTokenizer()
    model, none = load_classifier("tiny-bert", vocab_size=len(tok), seed=0)
    assert none is None and not model.training
    return model, tok


def test_trainable_parameters_partial_and_head():
    model, _ = _tiny()
    part = trainable_parameters(model, "partial", last_layers=1)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("layer.1." in n for n in names) and not any("layer.0." in n for n in names)
    assert any("classifier" in n for n in names) and len(part) == len(names)
    head = trainable_parameters(model, "head")
    assert all("layer." not in n for n, p in model.named_parameters() if p.requires_grad)
    assert len(head) < len(part) < len(trainable_parameters(model, "full"))
    with pytest.raises(ValueError, match="mode"):
        trainable_parameters(model, "lora")


def test_cached_prefix_equals_the_full_model_and_finetunes():
    model, tok = _tiny()
    task = sentiment_task(48, 16, seed=1)
    x = encode(tok, task.train_text)
    with torch.no_grad():
        ref = model(**x).logits
        tail = CachedPrefix(model, x, last_layers=1)
        assert torch.allclose(tail(torch.arange(48)).logits, ref, atol=1e-6)
    params = trainable_parameters(model, "partial", last_layers=1)
    frozen = model.bert.embeddings.word_embeddings.weight.clone()
    data = Encoded({"index": torch.arange(40)}, task.train_labels[:40], {"index": torch.arange(40, 48)},
                   task.train_labels[40:])
    tr = finetune(tail, params, data, method="mezo-svrg", steps=6, batch_size=8, lr_full=1e-2, lr_mini=1e-3,
                  eval_every=2, anneal_window=2)
    assert tr.queries[-1] == 3 * 2 * 40 + 3 * 4 * 8 and len(tr.train_loss) == 4
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, frozen)
    assert tr.time_to(float("inf")) == 0.0 and tr.best_loss()[0] <= tr.train_loss[0]
    with pytest.raises(ValueError, match="method"):
        finetune(tail, params, data, method="adamw", steps=1, batch_size=4)


def test_unknown_model_name_is_an_error():
    with pytest.raises(ValueError, match="name"):
        load_classifier("no/such/folder")


def test_tsv_task_reads_a_glue_style_file(tmp_path):
    from effcourse.mezo.text import tsv_task

    rows = "sentence\tlabel\n" + "".join(f"sentence number {i}\t{i % 2}\n" for i in range(30))
    (tmp_path / "train.tsv").write_text(rows)
    (tmp_path / "dev.tsv").write_text(rows)
    t = tsv_task(tmp_path / "train.tsv", tmp_path / "dev.tsv", n_train=10, n_test=5, seed=0)
    assert len(t.train_text) == 10 and len(t.test_text) == 5 and t.num_labels == 2
    assert all(int(s.split()[-1]) % 2 == y for s, y in zip(t.train_text, t.train_labels.tolist()))
    (tmp_path / "bad.tsv").write_text("text\tlabel\nx\t0\n")
    with pytest.raises(ValueError, match="header"):
        tsv_task(tmp_path / "bad.tsv", tmp_path / "dev.tsv")


def test_load_task_reads_the_configured_source(tmp_path):
    from effcourse.mezo.text import load_task

    gen = load_task("generated", 20, 10, seed=3)
    assert gen.train_text == sentiment_task(20, 10, seed=3).train_text
    rows = "sentence\tlabel\n" + "".join(f"s {i}\t{i % 2}\n" for i in range(12))
    (tmp_path / "t.tsv").write_text(rows)
    t = load_task((str(tmp_path / "t.tsv"), str(tmp_path / "t.tsv")), 5, 4)
    assert len(t.train_text) == 5 and len(t.test_text) == 4
    with pytest.raises(ValueError, match="spec"):
        load_task("sst2", 5, 5)


@pytest.mark.parametrize("family", ["distilbert", "roberta"])
def test_cached_prefix_handles_distilbert_and_roberta(family):
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    torch.manual_seed(0)
    if family == "distilbert":
        model = DistilBertForSequenceClassification(DistilBertConfig(
            vocab_size=50, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=32)).eval()
    else:
        model = RobertaForSequenceClassification(RobertaConfig(
            vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=40)).eval()
    ids = torch.randint(3, 50, (6, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    x = {"input_ids": ids, "attention_mask": mask}
    with torch.no_grad():
        ref = model(**x).logits
        for k in (0, 1):
            assert torch.allclose(CachedPrefix(model, x, last_layers=k)(torch.arange(6)).logits, ref, atol=1e-6)
