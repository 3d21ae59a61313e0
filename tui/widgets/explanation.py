"""A review with each word tinted by how much it pushed the prediction (core.explain), and the top words."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from core.format import printable

TOWARD, AWAY = "green", "red"
STRONG, NOTABLE = 0.6, 0.15  # shares of the strongest word's score: bold above STRONG, coloured above NOTABLE


def explanation_text(explanation: Any, label: str | None = None) -> Text:
    """The words in text order, green toward the predicted label and red away from it, then the top words."""
    words = explanation.words
    strongest = max((abs(w.score) for w in words), default=0.0) or 1.0
    text = Text()
    for i, w in enumerate(words):
        share = abs(w.score) / strongest
        style = "" if share < NOTABLE else (TOWARD if w.score > 0 else AWAY) + (" bold" if share >= STRONG else "")
        text.append((" " if i and getattr(w, "spaced", True) else "") + printable(w.word), style=style)
    if explanation.truncated:
        text.append(" … (the rest was cut at max_length)", style="italic")

    def listed(items) -> str:
        return ", ".join(f"{printable(explanation.name(w))} {w.score:+.2f}" for w in items
                         if abs(w.score) >= 0.005) or "none"

    name = printable(label or explanation.prediction.label)
    text.append("\n")
    text.append(f"toward {name}: ", style=TOWARD)
    text.append(listed(explanation.top(5)))
    text.append(" · ")
    text.append("away: ", style=AWAY)
    text.append(listed(explanation.top(5, toward=False)))
    return text


class ExplanationView(Static):
    """Why the model gave its label: shown after each prediction once its explanation is computed.

    Explanations run in their own thread on the model's twin (core.predict.Predictor.twin), so the next
    prediction never waits for one; one at a time, and a review asked while one runs replaces any that waits.
    """

    DEFAULT_CSS = "ExplanationView { height: auto; padding: 0 1; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.explanation: Any = None
        self.for_text: str | None = None
        self._explaining: str | None = None  # the review being explained
        self._asked: tuple[Any, str] | None = None  # (predictor, review) to explain after it; stale ones dropped

    def explain(self, predictor: Any, text: str) -> None:
        """Explain the prediction of `text` by `predictor` as soon as the explanation under way (if any) ends."""
        self.waiting(text)
        self._asked = (predictor, text)
        if self._explaining is None:
            self._start_next()

    def _start_next(self) -> None:
        if self._asked is not None:
            predictor, self._explaining = self._asked
            self._asked = None
            self._explain(predictor, self._explaining)

    @work(thread=True, exit_on_error=False, group="explain-one")
    def _explain(self, predictor: Any, text: str) -> Any:
        from core.explain import explain

        return explain(predictor.twin(), text)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "explain-one" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        text, self._explaining = self._explaining, None
        if text == self.for_text:  # else a later prediction replaced the one this explains
            if event.state == WorkerState.ERROR:
                self.failed(str(event.worker.error))
            else:
                self.show(event.worker.result)
        self._start_next()

    def waiting(self, text: str) -> None:
        self.explanation, self.for_text = None, text
        self.update(Text("explaining: which words decided it…", style="italic dim"))

    def show(self, explanation: Any) -> None:
        self.explanation = explanation
        self.update(explanation_text(explanation))

    def failed(self, message: str) -> None:
        self.explanation = None
        self.update(Text(f"no explanation: {message}", style="italic"))

    def clear(self) -> None:
        self.explanation, self.for_text, self._asked = None, None, None
        self.update("")


class RunExplainer:
    """Explanations of reviews with one run's model, loaded on first use and kept while the same run is asked
    about (F4's Errors and Data tabs: one model at a time). Called from a worker thread."""

    def __init__(self) -> None:
        self._loaded: tuple[Any, Any] | None = None  # (run folder, its core.predict.Predictor)

    def explain(self, run: Any, text: str) -> Any:
        from core.explain import explain
        from core.predict import Predictor

        if self._loaded is None or self._loaded[0] != run:
            self._loaded = (run, Predictor(run))
        return explain(self._loaded[1], text)
