"""Explanations: word-level Integrated Gradients that name the word a tiny model decides by."""

import json
import random

import pytest

from core.cli import main
from tests.tiny import NEUTRAL, train_on_rows


@pytest.fixture(scope="module")
def one_word_run(tmp_path_factory, tiny_model):
    """A run on reviews of neutral words where only 'superb' (positive) or 'dreadful' (negative) decides."""
    rng = random.Random(5)
    rows = []
    for i in range(300):
        positive = i % 2 == 0
        words = [rng.choice(NEUTRAL) for _ in range(rng.randint(5, 10))]
        words.insert(rng.randrange(len(words) + 1), "superb" if positive else "dreadful")
        rows.append({"text": " ".join(words) + f" {i}", "label": "positive" if positive else "negative"})
    return train_on_rows(rows, tmp_path_factory.mktemp("one-word"), tiny_model, max_length=32, baseline=False)


@pytest.mark.parametrize("word,label", [("superb", "positive"), ("dreadful", "negative")])
def test_the_deciding_word_is_the_top_attribution(one_word_run, word, label):
    from core.explain import explain
    from core.predict import Predictor

    explanation = explain(Predictor(one_word_run), f"the plot was quite {word} and the music felt really on time")
    assert explanation.prediction.label == label
    assert [w.word for w in explanation.words][:5] == ["the", "plot", "was", "quite", word]  # text order, whole words
    assert explanation.top(1)[0].word == word
    assert explanation.delta < 0.05 * sum(abs(w.score) for w in explanation.words) + 1e-6


def test_predict_explain_json_gives_every_word_its_score(one_word_run, capsys):
    assert main(["predict", str(one_word_run), "a superb story", "the ending was dreadful", "--explain", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [[w["word"] for w in line["explanation"]] for line in lines] == [
        ["a", "superb", "story"], ["the", "ending", "was", "dreadful"]]
    assert all(isinstance(w["score"], float) for line in lines for w in line["explanation"])
    for line in lines:  # converged (delta under 5% of the change the scores explain), or the steps ran out
        change = abs(sum(w["score"] for w in line["explanation"]))
        assert line["explanation_delta"] <= 0.05 * change + 1e-6 or line["explanation_steps"] == 256
    top = [max(line["explanation"], key=lambda w: w["score"])["word"] for line in lines]
    assert top == ["superb", "dreadful"]


def test_predict_explain_prints_plain_words_when_not_a_terminal(one_word_run, capsys):
    assert main(["predict", str(one_word_run), "a superb story", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out and "superb" in out and "toward" in out and "IG delta" in out


def test_words_are_whole_with_their_punctuation_and_repeats_say_where(one_word_run):
    from core.explain import explain
    from core.predict import Predictor
    from tui.widgets.explanation import explanation_text

    explanation = explain(Predictor(one_word_run), "the plot, it wasn't superb. the end")
    assert [(w.word, w.spaced, w.position) for w in explanation.words] == [
        ("the", False, 1), ("plot,", True, 2), ("it", True, 3), ("wasn't", True, 4), ("superb.", True, 5),
        ("the", True, 6), ("end", True, 7)]  # no "t", "," or "." of their own
    assert explanation_text(explanation).plain.startswith("the plot, it wasn't superb. the end\n")
    named = {explanation.name(w) for w in explanation.words}
    assert {"the (word 1)", "the (word 6)", "plot", "superb"} <= named


def test_scores_explain_the_labels_log_odds_not_its_logit(one_word_run):
    """Completeness against what decides the label: the scores add up to the change in its log-odds."""
    import torch

    from core.explain import explain
    from core.predict import Predictor

    predictor = Predictor(one_word_run)
    text = "not a dreadful film at all"
    explanation = explain(predictor, text, steps=64)
    target = predictor.label_names.index(explanation.prediction.label)
    enc = predictor.tokenizer(text, return_tensors="pt")
    ids = enc["input_ids"][0]
    special = torch.tensor(predictor.tokenizer.get_special_tokens_mask(ids.tolist(), already_has_special_tokens=True))
    blank = torch.where(special.bool(), ids, torch.full_like(ids, predictor.tokenizer.pad_token_id))
    with torch.no_grad():
        scored = [predictor.model(input_ids=x[None], attention_mask=enc["attention_mask"]).logits[0]
                  / (predictor.temperature or 1.0) for x in (ids, blank)]
    assert len(predictor.label_names) == 2  # two labels: log(p / (1 - p)) is the difference of the two logits
    log_odds = [float(x[target] - x[1 - target]) for x in scored]
    logit = [float(x[target]) for x in scored]
    total = sum(w.score for w in explanation.words)
    assert abs(total - (log_odds[0] - log_odds[1])) <= explanation.delta + 1e-3
    assert abs(total - (logit[0] - logit[1])) > 10 * (explanation.delta + 1e-3)  # what was attributed before
