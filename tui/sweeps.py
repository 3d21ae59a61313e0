"""The app's side of sweeps: ask with the plan, train the points one after another (here or in a background
process the app follows), show the current one on F3, and say which run was best."""

from __future__ import annotations

from pathlib import Path

from textual import work

from core.config import TrainConfig
from core.runs import layout
from core.runs.progress import RunProgress
from tui.live import Kind, LiveView
from tui.messages import SweepPoint, SweepPointEnded, TrainingEvent
from tui.safe import notify_error
from tui.screens.modals import ConfirmModal
from tui.training import starting


class SweepControl:
    """Mixed into the App beside TrainingControl: a sweep is trained by the same App-owned worker group."""

    def _ask_to_sweep(self, config: TrainConfig, detached: bool, question: str, grid: dict) -> None:
        def answer(yes: bool | str | None) -> None:
            if yes:
                self.start_sweep(config, grid, detached, prune=yes == "p")

        question += ("\nPruning stops a run as soon as it falls behind the median of the finished ones (evaluated "
                     "four times an epoch): fewer steps, the same best point most of the time.")
        self.push_screen(ConfirmModal(question, yes="Start sweep", no="Cancel", enter_is_yes=True,
                                      other=("Start, pruning", "p")), answer)

    def confirm_sweep(self, config: TrainConfig, grid: dict, detached: bool = False) -> None:
        """Ask once, with the runs the sweep makes and the time they take, then train them one after another."""
        if self.training:
            self.notify("A run is already training; stop it first (F3, Stop & save).", severity="warning")
            return
        self._sweep_question(config, grid, detached)

    @work(thread=True, exit_on_error=False, group="start-question")
    def _sweep_question(self, config: TrainConfig, grid: dict, detached: bool):
        from core.experiments.plan import sweep_question
        from core.runs.store import train_rate

        rate = train_rate(self.runs_root, config.model, self.device_name)
        question = sweep_question(config, grid, self.dataset, rate)
        if detached:
            question += "\nIt runs in a background process that survives the SSH session ending."
        return config, detached, question, grid

    def start_sweep(self, config: TrainConfig, grid: dict, detached: bool = False, prune: bool = False) -> bool:
        """Train one run per point of `grid` over `config`, one after another (`prune`: the hopeless ones stopped
        early, core.experiments.study); F3 shows the current one."""
        if self.training:
            self.notify("A run is already training; stop it first (F3, Stop & save).", severity="warning")
            return False
        self.config = config
        self._save_last_config(config)
        if detached:
            self._begin(starting(), LiveView(Kind.SWEEP_PROCESS),
                        lambda live: self._sweep_detached(config, grid, live, prune))
        else:
            self._begin(RunProgress(), LiveView(Kind.SWEEP_HERE), lambda live: self._sweep(config, grid, live, prune))
        return True

    def _sweep_record(self, config: TrainConfig, grid: dict, prune: bool = False) -> Path:
        from core.experiments.plan import plan_points
        from core.experiments.record import create_sweep
        from core.training.preflight import check_data, preflight

        preflight(config, self.runs_root)
        check_data(config)
        return create_sweep(config, grid, plan_points(grid, seed=config.seed), self.runs_root, prune=prune)

    def resume_sweep(self, path: Path) -> bool:
        """Go on with a stopped or interrupted sweep's runs left to do, here (F4's Sweep tab, R)."""
        from core.errors import CoreError
        from core.experiments.record import check_resumable

        if self.training:
            self.notify("A run is already training; stop it first (F3, Stop & save).", severity="warning")
            return False
        try:
            check_resumable(Path(path))
        except CoreError as exc:
            notify_error(self, exc)
            return False
        self._begin(RunProgress(), LiveView(Kind.SWEEP_HERE, sweep=Path(path)),
                    lambda live: self._sweep_resumed(Path(path), live))
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="sweep")
    def _sweep(self, config: TrainConfig, grid: dict, live: LiveView, prune: bool = False):
        path = self._sweep_record(config, grid, prune)
        live.found(sweep=path)
        return self._run_sweep_here(path, live)

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="sweep")
    def _sweep_resumed(self, path: Path, live: LiveView):
        return self._run_sweep_here(path, live)

    def _run_sweep_here(self, path: Path, live: LiveView) -> dict:
        from core.experiments.worker import run_sweep

        return run_sweep(path, on_event=lambda e: self.post_message(TrainingEvent(e)), stop_event=live.stop_event,
                         on_point=lambda k, n, p: self.post_message(SweepPoint(str(path), k, n, p["settings"],
                                                                               p.get("run_dir"))),
                         on_done=lambda k, n, p: self.post_message(SweepPointEnded(k, n, p["status"], p.get("run_dir"),
                                                                                   p.get("pruned"))))

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="sweep-detached")
    def _sweep_detached(self, config: TrainConfig, grid: dict, live: LiveView, prune: bool = False):
        """Start the sweep in its own process, then follow each of its runs as it trains. A stop goes to the
        sweep (its stop file), whichever run it is at, and also between two runs."""
        import time

        from core.experiments.launch import start_sweep_detached
        from core.experiments.record import read_sweep
        from core.runs.control import follow

        path = self._sweep_record(config, grid, prune)
        start_sweep_detached(path)
        self._stop_answer(lambda: live.found(sweep=path))  # a stop pressed while it started goes to the sweep now
        followed: set[str] = set()
        while not live.unfollow.is_set():
            record = read_sweep(path)
            points = record["points"]
            # Every run it starts, in order: one that started and ended between two looks is shown from its
            # events too (a short run can), so F3 never skips a run of the sweep.
            k, point = next(((k, p) for k, p in enumerate(points, 1) if p.get("run_dir")
                             and p.get("status") != "pending" and p["run_dir"] not in followed), (0, None))
            if point is not None and (Path(point["run_dir"]) / layout.STATUS).exists():
                followed.add(point["run_dir"])
                live.found(run_dir=Path(point["run_dir"]))
                self.post_message(SweepPoint(str(path), k, len(points), point["settings"]))  # its events follow
                for event in follow(point["run_dir"], stop=live.unfollow.is_set):
                    self.post_message(TrainingEvent(event))
                self._said_how_it_ended(path, k)
                continue
            if point is not None and point.get("status") != "running":
                followed.add(point["run_dir"])  # it ended without a status (never started): nothing to show
                continue
            if point is None and record["status"] not in ("starting", "running"):
                return record
            time.sleep(0.3)
        return None

    def _said_how_it_ended(self, path: Path, k: int) -> None:
        """A background sweep's run ended: how, as the sweep's worker records it once the run has let go."""
        import time

        from core.experiments.record import read_sweep

        for _ in range(20):  # the worker tells the study a moment after the run's last event
            point = read_sweep(path)["points"][k - 1]
            if point.get("status") not in ("running", "pending"):
                break
            time.sleep(0.1)
        self.post_message(SweepPointEnded(k, len(read_sweep(path)["points"]), str(point.get("status")),
                                          point.get("run_dir"), point.get("pruned")))

    def on_sweep_point_ended(self, message: SweepPointEnded) -> None:
        """A pruned run is said at once (F3 shows why); its figures stay on F4 like any other run's."""
        self.pruned = (message.run_dir, message.pruned) if message.status == "pruned" else None
        if message.status == "pruned":
            self.notify(f"Sweep run {message.index} of {message.total} pruned: {message.pruned}.", title="Sweep",
                        timeout=10)
            self.progress_version += 1

    def on_sweep_point(self, message: SweepPoint) -> None:
        """A sweep's next run starts: the dashboard shows it from its start (a resumed run: from its history)."""
        from core.events import read_events

        self.sweep = message
        history = read_events(Path(message.run_dir) / layout.EVENTS) if message.run_dir else []
        self.progress = RunProgress.from_events(history) if history else starting(
            f"starting run {message.index} of {message.total}")
        self.progress_version += 1
        self.update_subtitle()

    def _sweep_ended(self, record: dict | None) -> None:
        from core.experiments.plan import describe
        from core.experiments.record import ranked, score

        self.sweep = None
        if not record:
            return
        best = ranked(record)
        done = sum(p.get("status") == "finished" for p in record["points"])
        if best:
            point = best[0]
            self.newest_run = Path(point["run_dir"])
            self.notify(f"{done} of {len(record['points'])} runs finished; best by validation macro F1: "
                        f"{describe(point['settings'])} ({score(point):.3f}). See its sweep on F4 (tab 5).",
                        title=f"Sweep {record['status']}", timeout=15)
        else:
            self.notify(f"Sweep {record['status']}: no run was evaluated.", title="Sweep", severity="warning")
