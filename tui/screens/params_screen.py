"""F2: edit every hyperparameter, see what the run will do and how long it may take, then start it."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Grid, Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Button, Checkbox, Input, Label, Static
from textual.worker import Worker, WorkerState

from core.config import FIELDS, PRESETS, TrainConfig, changes, format_value, preset
from core.experiments.plan import plan_points, point_configs
from core.format import format_duration, printable, short_name
from core.training.planning import plan
from tui.safe import SafeInput, notify_error, plain
from tui.screens.base import BaseScreen
from tui.widgets.form_config import ConfigForm

FIGURES = (
    ("train_samples", "train samples"),
    ("effective_batch", "eff. batch"),
    ("steps_per_epoch", "steps/epoch"),
    ("total_steps", "total steps"),
    ("warmup_steps", "warmup steps"),
)


def _preset_id(name: str) -> str:
    return "preset-" + name.replace(" ", "-")


def _loaded_rows(rows: int, max_samples: int) -> str:
    sampled = f", {max_samples} of them sampled" if 0 < max_samples < rows else ""
    return f"from the loaded data ({rows} clean rows{sampled})"


class ParamsScreen(BaseScreen):
    """The hyperparameter form with presets, TOML save/load, the derived plan and the Start button."""

    BINDINGS = [
        Binding("ctrl+t", "start", "Start", priority=True),  # a run, or a sweep: the button says which
        Binding("ctrl+s", "save", "Save TOML", priority=True),
        # Function keys reach the app through every terminal, SSH and tmux; alt+digit does not (macOS types ¡).
        *[Binding(f"f{i}", f"preset({i - 6})", f"Preset {name}", priority=True, show=False)
          for i, name in enumerate(PRESETS, start=6)],
        Binding("ctrl+z", "undo", "Undo preset/load", priority=True),
        Binding("ctrl+f", "find_lr", "Find learning rate", priority=True),
        # Tab and Shift+Tab stop at the ends of the form: a stray Shift+Tab never lands on Start. With priority
        # they are handled in the order they were typed, before the keys behind them reach the focused field.
        Binding("tab", "focus_step(1)", show=False, priority=True),
        Binding("shift+tab", "focus_step(-1)", show=False, priority=True),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    AUTO_FOCUS = "#form Input"

    DEFAULT_CSS = """
    ParamsScreen #params-body { height: 1fr; }
    ParamsScreen.-wide #params-body { layout: horizontal; }
    ParamsScreen #params-main { width: 1fr; height: 1fr; }
    ParamsScreen .tools { height: 1; padding: 0 1; }
    ParamsScreen .tools Label { width: 13; color: $text-muted; }
    ParamsScreen .tools Button { margin-right: 1; min-width: 6; }
    ParamsScreen #toml-path { width: 1fr; max-width: 40; margin-right: 1; }
    ParamsScreen #plan-panel { height: auto; padding: 0 1; background: $boost; }
    ParamsScreen.-wide #plan-panel { width: 34; height: 1fr; border-left: vkey $primary 50%; }
    ParamsScreen.-narrow #plan-panel { layout: horizontal; }
    ParamsScreen #plan-figures-box { height: auto; }
    ParamsScreen.-narrow #plan-figures-box { width: 1fr; }
    ParamsScreen #plan-figures { height: auto; grid-rows: 1; grid-gutter: 0 1; }
    ParamsScreen.-narrow #plan-figures { grid-size: 3; }
    ParamsScreen.-wide #plan-figures { grid-size: 1; }
    ParamsScreen .figure { width: 1fr; height: 1; }
    ParamsScreen .figure-name { width: auto; margin-right: 1; }
    ParamsScreen.-wide .figure-name { width: 17; }
    ParamsScreen .figure-value { text-style: bold; }
    ParamsScreen #plan-source, ParamsScreen #estimate { color: $text-muted; }
    ParamsScreen.-narrow #plan-title, ParamsScreen.-narrow #plan-source { display: none; }
    ParamsScreen.-wide #estimate { margin: 1 0; }
    ParamsScreen #start-box { height: auto; }
    ParamsScreen.-narrow #start-box { width: 20; margin-left: 1; }
    ParamsScreen.-narrow #start { width: 100%; min-width: 18; }
    ParamsScreen.-wide #start { width: 100%; }
    """

    def compose_body(self) -> ComposeResult:
        with Container(id="params-body"):
            with Vertical(id="params-main"):
                with Horizontal(classes="tools"):
                    yield Label("preset F6-F8")
                    for name in PRESETS:
                        yield Button(name, id=_preset_id(name), compact=True)
                with Horizontal(classes="tools"):
                    yield Label("TOML file")
                    yield SafeInput("sentitune.toml", id="toml-path", compact=True)
                    yield Button("Save", id="save", compact=True)
                    yield Button("Load", id="load", compact=True)
                yield ConfigForm(self.app.config, id="form")
            with Vertical(id="plan-panel"):
                yield Label("Plan", id="plan-title", classes="section-title")
                with Vertical(id="plan-figures-box"):
                    with Grid(id="plan-figures"):
                        for key, name in FIGURES:
                            with Horizontal(classes="figure"):
                                yield Label(name, classes="figure-name")
                                yield Label(id=f"fig-{key}", classes="figure-value")
                    yield Static(id="plan-source")
                    yield Static(id="estimate")
                with Vertical(id="start-box"):
                    yield Checkbox("in background", id="background", compact=True,
                                   tooltip="Train in a separate process that survives the SSH session ending")
                    yield Button("Start training", id="start", variant="success")

    def on_mount(self) -> None:
        self._rates: dict[tuple, tuple[float, str] | None] = {}
        self._asked: set[tuple] = set()
        self._undo: list[tuple[TrainConfig, str]] = []  # (config before, what changed it)
        self._offer_models()
        self.watch(self.app, "config", self._config_changed, init=False)
        for name in ("dataset", "device_name", "runs_version"):
            self.watch(self.app, name, self._refresh_plan, init=False)
        self._refresh_plan()

    @property
    def form(self) -> ConfigForm:
        return self.query_one("#form", ConfigForm)

    # ------------------------------------------------------------ form <-> app.config

    def on_config_form_edited(self, event: ConfigForm.Edited) -> None:
        if event.config is not None:
            # Watchers run during the assignment: mark it ours so the form is not refilled with its own,
            # possibly older, value while newer keystrokes are still queued (that ping-pong never ends).
            self._publishing = True
            try:
                self.app.config = event.config
            finally:
                self._publishing = False
        self._refresh_plan()

    def _config_changed(self, old: TrainConfig, new: TrainConfig) -> None:
        """Another screen changed the config: refill the fields it changed, keep the user's other edits."""
        if getattr(self, "_publishing", False) or new == self.form.config:
            return
        self.form.fill(new, [name for name in FIELDS if getattr(old, name) != getattr(new, name)])

    # ------------------------------------------------------------ plan and estimate

    def _refresh_plan(self) -> None:
        config = self.form.config
        start = self.query_one("#start", Button)
        start.disabled = config is None
        runs = len(plan_points(self.form.sweep)) if config is not None and self.form.sweep else 0
        start.label = f"Start sweep ({runs} runs)" if runs > 1 else "Start sweep (1 run)" if runs else "Start training"
        estimate = self.query_one("#estimate", Static)
        if config is None:
            for key, _ in FIGURES:
                self.query_one(f"#fig-{key}", Label).update("–")
            count = len(self.form.errors)
            estimate.update(f"fix {count} invalid field{'s' if count != 1 else ''} to start")
            return
        dataset = self.app.dataset
        rows = dataset.rows_for(config) if dataset is not None else None  # None: loaded for another file or split
        if dataset is not None and dataset.stale(config):
            dataset = None  # token lengths from another model's tokenizer do not scale this estimate
        figures = plan(config, rows)
        # A sweep's points may differ (a list in batch_size): each figure shows its range over them.
        points = [plan(c, dataset.rows_for(c) if dataset is not None else rows)
                  for c in point_configs(config, plan_points(self.form.sweep))] if runs > 1 else [figures]
        unknown = rows is None and config.max_samples == 0
        for key, _ in FIGURES:
            low, high = min(getattr(p, key) for p in points), max(getattr(p, key) for p in points)
            value = str(low) if low == high else f"{low}–{high}"
            if key != "effective_batch" and unknown:
                value = "?"  # every row of a file not loaded yet
            elif key != "effective_batch" and rows is None and value != "0":
                value = f"≤{value}"  # counted from max_samples, not the file: the file may hold fewer rows
            self.query_one(f"#fig-{key}", Label).update(value)
        self.query_one("#plan-source", Static).update(plain(
            f"{short_name(config.model)} · " + (_loaded_rows(rows, config.max_samples) if rows is not None
                                                else "from max_samples; load the data (F1) for exact counts")))
        device = self.app.device_name
        if device.startswith("detecting"):
            estimate.update("no estimate yet: detecting the device…")
            return
        key = (self.app.runs_root, config.model, device, self.app.runs_version)
        if key not in self._rates:
            estimate.update("estimating from earlier runs…")
            if key not in self._asked:
                self._asked.add(key)
                self._estimate_rate(key)
            return
        from core.training.planning import estimate as estimate_time

        found = None if unknown else estimate_time(config, figures, self._rates[key], dataset)
        if unknown:
            estimate.update("no estimate yet: load the data (F1) to count its rows")
        elif found is None:
            estimate.update("no estimate yet: no earlier run of this model on this device")
        else:
            each = format_duration(found.seconds)
            # What matters first, before a narrow terminal cuts the line: the time, then where it comes from.
            head = (f"estimated: ~{each} per run, {runs} runs" if runs else f"estimated training time: ~{each}")
            estimate.update(plain(f"{head} ({found.basis})"))

    @work(thread=True, exit_on_error=False, group="estimate")
    def _estimate_rate(self, key: tuple):
        """The training rate of the newest earlier run of this model on this device (core.runs.store.TrainRate)."""
        from core.runs.store import train_rate

        root, model, device, _ = key
        return key, train_rate(root, model, device)

    # ------------------------------------------------------------ actions

    def action_start(self) -> None:
        """Start training with the form's config."""
        config = self.form.config
        if config is None:
            fields = ", ".join(self.form.errors)
            self.notify(f"Fix these fields first: {fields}", title="Invalid configuration", severity="error")
            return
        self.app.config = config
        detached = self.query_one("#background", Checkbox).value
        if self.form.sweep:
            self.app.confirm_sweep(config, self.form.sweep, detached=detached)
        else:
            self.app.confirm_start(config, detached=detached)

    def action_find_lr(self) -> None:
        """Run the learning-rate range test on the form's settings; its suggestion can fill learning_rate."""
        from core.format import number
        from tui.screens.lr_find_modal import LrFindModal

        config = self.form.config
        if config is None:
            self.notify(f"Fix these fields first: {', '.join(self.form.errors)}", title="Invalid configuration",
                        severity="error")
            return
        if self.app.training:
            self.notify("A run is training: find the learning rate when it ends (both would share the device).",
                        severity="warning")
            return

        def use(rate: float | None) -> None:
            if rate is not None:
                self.form.fill(self.form.config.replace(learning_rate=float(f"{rate:.2g}")), ["learning_rate"])
                self.notify(f"learning_rate set to {rate:.2g}", title="Learning rate")

        listed = [n for n in (self.form.sweep or {}) if n != "learning_rate"]
        if listed:  # one test, one set of settings: say which values of the lists it uses
            self.notify("The test uses " + ", ".join(f"{n}={number(getattr(config, n))}" for n in listed)
                        + ", the first value of each list.", title="Find learning rate")
        self.app.push_screen(LrFindModal(config, self.app.runs_root), use)

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, ".tools Button")
    def _tool_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "save":
            self.action_save()
        elif button == "load":
            self._read_toml(self._toml_path())
        else:
            self.action_preset(next(i for i, n in enumerate(PRESETS) if _preset_id(n) == button))

    def action_preset(self, index: int) -> None:
        """Apply a preset, saying which fields it changed (and from what); ctrl+z undoes it."""
        name = list(PRESETS)[index]
        self._replace_form(preset(name, self.app.config), f"Preset '{name}'")

    def _replace_form(self, new: TrainConfig, what: str) -> None:
        old = self.form.config or self.app.config
        changed = changes(old, new)
        # What was typed into invalid fields is replaced too: named, as it is not in `changed` (nor undone).
        invalid = ", ".join(f"{n} ({str(self.form.raw[n])!r})" for n in self.form.errors if n in self.form.raw)
        reset = f" It reset the invalid fields {invalid}." if invalid else ""
        self.form.fill(new)
        if not changed:
            self.notify(printable(f"{what}: nothing to change.{reset}"), title="Settings", markup=False)
            return
        self._undo.append((old, what))
        listed = "; ".join(f"{n} {format_value(n, a) or '(auto)'} → {format_value(n, b) or '(auto)'}" for n, a, b in changed)
        self.notify(printable(f"{what} changed {listed}.{reset} ctrl+z undoes it."), title="Settings", markup=False,
                    timeout=8)

    def action_undo(self) -> None:
        if not self._undo:
            self.notify("Nothing to undo.", title="Settings")
            return
        old, what = self._undo.pop()
        self.form.fill(old)
        self.notify(f"Undid: {what}.", title="Settings", markup=False)

    def action_focus_step(self, step: int) -> None:
        chain = self.focus_chain
        if not chain:
            return
        index = chain.index(self.focused) if self.focused in chain else (-1 if step > 0 else len(chain))
        if 0 <= index + step < len(chain):
            # At once, not as widget.focus() does (after the keys already queued): the next Tab of a quick
            # burst must start from this field, and the text typed after it land in it.
            self.set_focus(chain[index + step])

    @work(thread=True, exit_on_error=False, group="models")
    def _offer_models(self) -> list[str]:
        """Models already used in this runs folder, offered as the model field is typed."""
        from core.runs.store import recent_models

        return recent_models(self.app.runs_root)

    def action_save(self) -> None:
        """Save the form's config to the TOML file."""
        config = self.form.config
        if config is None:
            self.notify("Fix the invalid fields before saving.", title="Invalid configuration", severity="error")
            return
        self._write_toml(config, self._toml_path())

    def _toml_path(self) -> str:
        return self.query_one("#toml-path", Input).value.strip() or "sentitune.toml"

    @work(thread=True, exit_on_error=False, group="toml")
    def _write_toml(self, config: TrainConfig, path: str) -> tuple[str, None]:
        from core.config import save_toml

        return str(save_toml(config, path)), None

    @work(thread=True, exit_on_error=False, group="toml")
    def _read_toml(self, path: str) -> tuple[str, TrainConfig]:
        from core.config import load_toml

        return path, load_toml(path)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "estimate" and event.state == WorkerState.SUCCESS:
            key, found = worker.result
            self._rates[key] = found
            self._refresh_plan()
        elif worker.group == "estimate" and event.state == WorkerState.ERROR:
            self.query_one("#estimate", Static).update(plain(f"no estimate: {worker.error}"))
        elif worker.group == "models" and event.state == WorkerState.SUCCESS and worker.result:
            self.query_one("#field-model", Input).suggester = SuggestFromList(worker.result, case_sensitive=True)
        elif worker.group == "toml" and event.state == WorkerState.SUCCESS:
            path, loaded = worker.result
            if loaded is not None:
                self._replace_form(loaded, f"Loading {path}")
            else:
                self.notify(printable(f"Saved {path}."), title="Configuration", markup=False)
        elif worker.group == "toml" and event.state == WorkerState.ERROR:
            notify_error(self, worker.error, title="Configuration file")
