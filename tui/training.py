"""The app's side of training: start (after asking), resume, attach, follow events, report failures, stop."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.worker import Worker, WorkerState

from core.config import TrainConfig
from core.errors import CoreError, TrainingError
from core.events import StageChanged, TrainingFailed, TrainingFinished, TrainingStarted, TrainingStopped
from core.format import format_event, stop_note
from core.runs import layout
from core.runs.control import Owner
from core.runs.progress import RunProgress
from tui.live import Kind, LiveView
from tui.messages import TrainingEvent, TrainingHistory
from tui.safe import for_app, notify_error, sentence
from tui.screens.modals import ConfirmModal, ErrorModal


class TrainingControl:
    """Mixed into the App: the training worker belongs to the App, so a run goes on whatever screen is shown."""

    # ------------------------------------------------------------ training

    def confirm_start(self, config: TrainConfig | None = None, detached: bool = False) -> None:
        """Ask once, showing the plan (model, data, steps, estimated time), then start; Enter or y starts."""
        if self.training:
            self.notify("A run is already training; stop it first (F3, Stop & save).", severity="warning")
            return
        config = config or self.config
        self._start_question(config, detached)
        from core.training.distributed import needs_launcher

        if not detached and not needs_launcher(config):  # a run in this process: its imports, while the question shows
            self._warm_up(config)

    @work(thread=True, exit_on_error=False, group="warm-up", exclusive=True)
    def _warm_up(self, config: TrainConfig) -> list[str]:
        from core.training.warm import warm_up

        return warm_up(config)

    @work(thread=True, exit_on_error=False, group="start-question")
    def _start_question(self, config: TrainConfig, detached: bool):
        """The question, built off the UI thread (the estimate reads earlier runs)."""
        from core.runs.store import train_rate
        from core.training.planning import start_question

        rate = train_rate(self.runs_root, config.model, self.device_name)
        question = start_question(config, self.dataset, rate)
        if detached:
            question += "\nIt trains in a background process that survives the SSH session ending."
        return config, detached, question

    def _ask_to_start(self, config: TrainConfig, detached: bool, question: str) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self.start_training(config, detached)

        self.push_screen(ConfirmModal(question, yes="Start", no="Cancel", enter_is_yes=True), answer)

    def start_training(self, config: TrainConfig | None = None, detached: bool = False) -> bool:
        """Start a run with `config` (default: the current one) without asking; False if one is already running.

        `detached` trains in a separate process that survives the terminal closing; the app follows it.
        """
        if self.training:
            self.notify("A run is already training; stop it first (F3, Stop & save).", severity="warning")
            return False
        if config is not None:
            self.config = config
        self._save_last_config(self.config)
        from core.training.distributed import needs_launcher

        config = self.config
        if detached or needs_launcher(config):  # several processes always run on their own
            # Shown as starting at once; the checks and the process start happen in the worker.
            self._begin(starting(), LiveView(Kind.PROCESS), lambda live: self._detach_and_follow(config, live))
            return True
        self._begin(RunProgress(), LiveView(Kind.HERE), lambda live: self._train(config, live))
        return True

    def _save_last_config(self, config: TrainConfig) -> None:
        """Remember the settings for the next time the app opens on this runs folder (core.config.last_config)."""
        from core.config import save_last_config

        try:
            save_last_config(config, self.runs_root)
        except OSError:
            pass  # only a convenience: the run itself reports a runs folder it cannot write

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="detach")
    def _detach_and_follow(self, config: TrainConfig, live: LiveView) -> None:
        from core.training.background import start_detached

        run_dir = start_detached(config, self.runs_root)  # bad input is an error here, before any process
        self._stop_answer(lambda: live.found(run_dir=run_dir))  # a stop pressed while it started goes to it now
        self._follow_run(run_dir, live, history=False)

    def _follow_run(self, run_dir: Path, live: LiveView, history: bool = True) -> None:
        """Post a run's events from its events.jsonl until nothing holds the run (or the app stops following):
        what is there already as one history (no notifications for a past segment's end), then live ones."""
        from core.runs.control import EventFollower, follow

        follower = EventFollower(run_dir)
        if history:
            self.post_message(TrainingHistory(str(run_dir), follower.read()))
            follower.queue.clear()
        for event in follow(run_dir, stop=live.unfollow.is_set, follower=follower):
            self.post_message(TrainingEvent(event))

    def _stop_answer(self, deliver) -> None:
        """Deliver a stop asked while a background start went on (from a worker thread; what it does was said
        when it was asked); one that cannot be delivered is said, and the following goes on."""
        try:
            deliver()
        except CoreError as exc:
            self.call_from_thread(notify_error, self, exc)

    def resume_run(self, run_dir: Path) -> bool:
        """Continue a stopped, failed or interrupted run from its last checkpoint, in this process."""
        from core.events import read_events
        from core.runs.checkpoints import last_complete_checkpoint

        if self.training:
            self.notify("A run is already training; stop it first (F3, Stop & save).", severity="warning")
            return False
        try:
            last_complete_checkpoint(run_dir)
        except CoreError as exc:
            notify_error(self, exc)
            return False
        history = RunProgress.from_events(read_events(Path(run_dir) / layout.EVENTS))
        self._begin(history, LiveView(Kind.HERE, Path(run_dir)), lambda live: self._resume(Path(run_dir), live))
        return True

    def attach_run(self, run_dir: Path) -> bool:
        """Show a run another process is training: its whole history, then live events."""
        if self.training:
            self.notify("A run is already shown live; wait for it or stop it first.", severity="warning")
            return False
        live = LiveView(Kind.PROCESS, Path(run_dir))
        self._begin(RunProgress(), live, lambda live: self._follow(Path(run_dir), live))
        return True

    def _begin(self, progress: RunProgress, live: LiveView, start) -> None:
        """Reset the dashboard to `progress`, start the worker for `live`, and show the dashboard."""
        self.live = live
        self.progress = progress
        self.training_worker = start(live)
        self.progress_version += 1
        self.switch_mode("train")
        self.update_subtitle()

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="training")
    def _train(self, config: TrainConfig, live: LiveView):
        from core.training.train import train

        return train(config, self.runs_root, on_event=lambda e: self.post_message(TrainingEvent(e)),
                     stop_event=live.stop_event, owner=Owner.APP)

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="resume")
    def _resume(self, run_dir: Path, live: LiveView):
        from core.training.train import resume

        return resume(run_dir, on_event=lambda e: self.post_message(TrainingEvent(e)), stop_event=live.stop_event,
                      owner=Owner.APP)

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="follow")
    def _follow(self, run_dir: Path, live: LiveView) -> None:
        self._follow_run(run_dir, live)

    def on_training_history(self, message: TrainingHistory) -> None:
        """A followed run's events so far: the dashboard is rebuilt from them in one go."""
        self.progress = RunProgress.from_events(message.events)
        self.update_subtitle()
        self.progress_version += 1

    def on_training_event(self, message: TrainingEvent) -> None:
        event = message.event
        self.progress.apply(event)
        self.update_subtitle()
        self.progress_version += 1
        if isinstance(event, TrainingFailed):
            self._report_failure(event)
        if isinstance(event, (TrainingFinished, TrainingStopped)) and event.run_dir:
            self.newest_run = Path(event.run_dir)
        if isinstance(event, TrainingFinished):
            acc = event.test.get("accuracy")
            self.notify(f"Test accuracy {acc:.1%}. See the report (F4).", title="Run finished")
        elif isinstance(event, TrainingStopped):
            # core's wording says whether a model was saved and tested
            self.notify(f"{sentence(format_event(event))}.", title="Run stopped", markup=False)
        if isinstance(event, (TrainingFailed, TrainingFinished, TrainingStopped, TrainingStarted)):
            self.runs_version += 1

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "start-question":
            if event.state == WorkerState.SUCCESS and len(worker.result) == 4:
                self._ask_to_sweep(*worker.result)
            elif event.state == WorkerState.SUCCESS:
                self._ask_to_start(*worker.result)
            elif event.state == WorkerState.ERROR:
                notify_error(self, worker.error)
            return
        if worker.group == "stop":
            if event.state == WorkerState.SUCCESS and worker.result:
                self.notify(sentence(worker.result), title="Stop & save", markup=False)
            elif event.state == WorkerState.ERROR:
                notify_error(self, worker.error)
            return
        if worker.group != "training" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if event.state == WorkerState.ERROR:
            error = worker.error
            if isinstance(error, TrainingError):
                # Reported by the TrainingFailed event's modal. The error's traceback still holds the failed
                # run's model, gradients and optimizer state: free them before any retry needs the memory.
                from core.training.oom import release_failure

                release_failure(error)
            elif isinstance(error, CoreError):
                # Bad input before a run folder existed: nothing was lost, say what to fix.
                self.progress = RunProgress()
                notify_error(self, error, timeout=10)
            else:
                self.push_screen(ErrorModal("Training crashed", f"{type(error).__name__}: {error}"))
        if worker.name in ("sweep", "sweep-detached"):
            self._sweep_ended(worker.result if event.state == WorkerState.SUCCESS else None)
        self.update_subtitle()
        self.progress_version += 1
        self.runs_version += 1
        if self._quit_when_stopped:
            self.exit()

    def _report_failure(self, event: TrainingFailed) -> None:
        """A modal with what happened; out of GPU memory also offers the same run at half the batch."""

        retry = None
        evaluating = event.kind == "oom_eval"
        if event.kind in ("oom", "oom_eval"):
            from core.runs.store import Run
            from core.training.oom import half_batch

            try:
                retry = half_batch(Run(event.run_dir).train_config(), evaluating)
            except CoreError:
                retry = None
        if retry is None:
            self.push_screen(ErrorModal(event.title, for_app(event.message)))
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.start_training(retry)

        if evaluating:
            question = f"Retry now with eval_batch_size {retry.eval_batch_size}? Training is unchanged."
            yes = f"Retry with eval batch {retry.eval_batch_size}"
        else:
            question = (f"Retry now with batch_size {retry.batch_size} and gradient_accumulation "
                        f"{retry.gradient_accumulation}? The effective batch stays the same.")
            yes = f"Retry with batch {retry.batch_size} x {retry.gradient_accumulation}"
        self.push_screen(ConfirmModal(f"{event.title}: {for_app(event.message)}\n\n{question}", yes=yes, no="Close"), answer)

    def request_stop(self) -> None:
        """Ask (with confirmation) to stop the run at the next step and save it."""
        if not self.training:
            self.notify("No run is training.", severity="warning")
            return

        sweep = getattr(self, "sweep", None)  # a new SweepPoint for each run of a sweep

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            if sweep is not None and self.sweep is not sweep:  # the sweep moved on behind the dialog
                self.notify(f"Sweep run {sweep.index}, which you asked to stop, ended before you answered; nothing "
                            "was stopped. Press s again to stop the sweep.", title="Stop & save", severity="warning")
                return
            self.stop_now()

        question = f"Stop training now? Now {stop_note(self.progress.stage)}."
        if sweep is not None:
            question = (f"Stop the sweep now, in its run {sweep.index} of {sweep.total}? Now {stop_note(self.progress.stage)}. "
                        f"No further run of the sweep starts; go on with it later: R on F4's Sweep tab, or "
                        f"sentitune sweep --resume {Path(sweep.sweep).stem}.")
        self.push_screen(ConfirmModal(question, yes="Stop & save"), answer)

    def stop_now(self) -> None:
        """Stop what the dashboard shows at its next step (no confirmation); never blocks the UI."""
        live = self.live
        if live is None or not self.training or live.stop_asked:
            return
        stage = self.progress.stage
        if live.ask_stop(stage):  # another process trains it: the stop is sent from a worker
            self._deliver_stop(live)
            if (live.sweep if live.kind == Kind.SWEEP_PROCESS else live.run_dir) is None:
                self.notify("It stops as soon as its process has started; nothing will be trained.",
                            title="Stop & save")
        else:
            self.notify(f"Stopping: {stop_note(stage)}.", title="Stop & save")
        self.update_subtitle()
        self.progress_version += 1

    @work(thread=True, exit_on_error=False, group="stop")
    def _deliver_stop(self, live: LiveView) -> str | None:
        return live.deliver()

    async def action_quit(self) -> None:
        self._save_last_config(self.config)  # what was typed (a long model path) is there next time
        live = self.live
        following = live is not None and not live.in_process
        if following:
            live.unfollow.set()  # stop following; the run's own process goes on
        if not self.training or following:
            self.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._quit_when_stopped = True
                self.stop_now()
                if not self.training:
                    self.exit()

        self.push_screen(ConfirmModal(f"A run is training. Stop it and quit? Now {stop_note(self.progress.stage)}.",
                                      yes="Stop & quit"), answer)


def starting(detail: str = "starting a background process (it takes a few seconds)") -> RunProgress:
    """A dashboard that says the run is starting, before it has said anything itself."""
    progress = RunProgress()
    progress.apply(StageChanged("start", detail))
    return progress
