"""A form over every TrainConfig field, grouped, each value checked as it is typed.

max_length is also checked against what the model takes, once the model's config.json has been read in a
thread (cached per model name; a name is read only after it has stopped changing for a moment).
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Label, Select, Static, Switch
from textual.worker import Worker, WorkerState

from core.config import FIELDS, TrainConfig, fields_by_group, format_value, help_text, parse_value
from core.errors import ConfigError
from core.experiments.plan import parse_grid, plan_points, point_configs
from core.training.coach import learning_rate_warning
from tui.safe import SafeInput, plain

MODEL_SETTLE_SECONDS = 0.4  # a model name typed key by key is read once, after the typing pauses


def _control(name: str, value: Any) -> Widget:
    """The input that edits field `name`: a Select for choices, a Switch for flags, else an Input."""
    meta, kind = FIELDS[name].metadata, FIELDS[name].type
    if "choices" in meta:
        return Select([(c, c) for c in meta["choices"]], value=value, allow_blank=False, compact=True,
                      name=name, id=f"field-{name}")
    if kind == "bool":
        return Switch(value, name=name, id=f"field-{name}")
    return SafeInput(format_value(name, value), name=name, id=f"field-{name}", compact=True,
                     select_on_focus=True)


class FieldRow(Vertical):
    """One field: its name and input, its help, and its error line (hidden while valid and unremarkable)."""

    def __init__(self, name: str, value: Any) -> None:
        super().__init__(classes="field-row", id=f"row-{name}")
        self.field = name
        self.value = value
        self._shown: tuple[str | None, str | None] = (None, None)  # (error, warning)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-line"):
            yield Label(self.field, classes="field-name")
            yield _control(self.field, self.value)
        yield Static(help_text(self.field), classes="field-help")
        yield Static("", classes="field-error")

    def show_error(self, error: str | None, warning: str | None = None) -> None:
        """Show `error` under the field (None: valid), else `warning` (valid but unusual: it does not block a
        run); every field is checked on each keystroke, so a row whose lines did not change is left alone
        (redrawing all of them made typing lag)."""
        if (error, warning) == self._shown:
            return
        self._shown = (error, warning)
        self.set_class(bool(error), "-invalid")
        self.set_class(bool(warning) and not error, "-warned")
        self.query_one(f"#field-{self.field}").set_class(bool(error), "field-invalid")
        self.query_one(".field-error", Static).update(
            plain(f"✗ {error}" if error else f"⚠ {warning}" if warning else ""))


def _listed(name: str, raw: Any) -> str | None:
    """The text of a number field holding several values (`2e-5, 5e-5`), else None."""
    if FIELDS[name].type in ("int", "float") and isinstance(raw, str) and "," in raw:
        return raw
    return None


class ConfigForm(VerticalScroll):
    can_focus = False  # Tab moves between the fields; the scroll area itself is no (invisible) tab stop

    """Edits a TrainConfig; posts `Edited` with the config (or None) and the errors after every change."""

    DEFAULT_CSS = """
    ConfigForm { height: 1fr; padding: 0 1; }
    ConfigForm .group-title { text-style: bold; color: $accent; margin-top: 1; }
    ConfigForm .field-row { height: auto; }
    ConfigForm .field-line { height: auto; }
    ConfigForm .field-name { width: 24; }
    ConfigForm .field-line Input, ConfigForm .field-line Select { width: 1fr; max-width: 48; }
    ConfigForm .field-line Switch { border: none; height: 1; padding: 0; }
    ConfigForm .field-help { color: $text-muted; padding-left: 2; }
    ConfigForm .field-error { color: $error; padding-left: 2; display: none; }
    ConfigForm .field-row.-invalid .field-error { display: block; }
    ConfigForm .field-row.-warned .field-error { display: block; color: $warning; }
    ConfigForm .field-invalid { background-tint: $error 30%; }
    """

    class Edited(Message):
        """The form changed: `config` is None while any field is invalid; `errors` maps field -> message."""

        def __init__(self, config: TrainConfig | None, errors: dict[str, str]) -> None:
            super().__init__()
            self.config, self.errors = config, errors

    def __init__(self, config: TrainConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._initial = config
        self.raw: dict[str, Any] = {name: getattr(config, name) for name in FIELDS}
        self.config: TrainConfig | None = config
        """With lists in fields: the first value of each (the sweep's base)."""
        self.errors: dict[str, str] = {}
        self.warnings: dict[str, str] = {}
        """Valid but unusual values (a learning rate far above fine-tuning's): said, never blocking."""
        self.sweep: dict[str, list[Any]] = {}
        """Fields holding a list of values (`2e-5, 5e-5`): a sweep, one run per combination."""
        self.model_configs: dict[str, Any] = {}  # model name -> its transformers config, None when unreadable
        self._reading: set[str] = set()
        self._model = config.model  # the model of the last config that parsed
        self._read_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        for group, names in fields_by_group().items():
            yield Static(group, classes="group-title")
            for name in names:
                yield FieldRow(name, getattr(self._initial, name))

    def on_mount(self) -> None:
        self._read_model_soon(self._initial.model)

    def fill(self, config: TrainConfig, names: list[str] | None = None) -> None:
        """Put `config`'s values (only `names`, if given) into the inputs and re-check."""
        for name in names or list(FIELDS):
            value = getattr(config, name)
            self.raw[name] = value
            control = self.query_one(f"#field-{name}")
            if isinstance(control, SafeInput):
                control.value = format_value(name, value)
            else:
                control.value = value
        self.check()

    def on_input_changed(self, event: SafeInput.Changed) -> None:
        self._edited(event, event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        self._edited(event, event.value)

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self._edited(event, event.value)

    def _edited(self, event: Message, value: Any) -> None:
        event.stop()
        name = event.control.name
        if name in FIELDS:
            self.raw[name] = value
            self.check()

    def check(self) -> None:
        """Parse every field, then (when all parse) check them together; show each error under its field."""
        errors, values, sweep, firsts = {}, {}, {}, {}
        for name, raw in self.raw.items():
            listed = _listed(name, raw)
            if listed is not None:  # a sweep over this field
                try:
                    sweep[name] = parse_grid([f"{name}={listed}"])[name]
                except ConfigError as err:
                    errors[name] = err.errors[name]
                    continue
                values[name] = firsts[name] = sweep[name][0]
                if len(sweep[name]) == 1:  # "2e-5," while the next value is being typed: one value, no sweep
                    del sweep[name]
                continue
            values[name], error = parse_value(name, raw)
            if error:
                errors[name] = error
        config = None
        if not errors:
            try:
                config = TrainConfig.from_dict({**self.raw, **firsts})
                if sweep:
                    point_configs(config, plan_points(sweep))  # every point must be a valid run
            except ConfigError as err:
                errors = err.errors
                config = None
        if not {"model", "max_length"} & set(errors):  # checked even while other fields are invalid
            self._model = values["model"]
            errors |= self._model_errors(values["model"], values["max_length"])
            config = None if errors else config
        self.config, self.errors, self.sweep = config, errors, sweep
        rates = sweep.get("learning_rate") or [values.get("learning_rate")]
        warning = learning_rate_warning(max(rates)) if "learning_rate" not in errors and None not in rates else None
        self.warnings = {"learning_rate": warning} if warning else {}
        for row in self.query(FieldRow):
            row.show_error(errors.get(row.field), self.warnings.get(row.field))
        self.post_message(self.Edited(config, errors))

    # ------------------------------------------------------------ what the model takes

    def _model_errors(self, model: str, max_length: int) -> dict[str, str]:
        """max_length against the model's position limit, when the model's config is known; else no error."""
        from core.training.preflight import check_max_length

        if model not in self.model_configs:
            self._read_model_soon(model)
            return {}
        model_config = self.model_configs[model]
        if model_config is None:
            return {}  # unreadable here: the run's own checks say why when it starts
        try:
            check_max_length(self._initial.replace(model=model, max_length=max_length), model_config)
        except ConfigError as err:
            return err.errors
        return {}

    def _read_model_soon(self, model: str) -> None:
        if model in self.model_configs or model in self._reading:
            return
        if self._read_timer is not None:
            self._read_timer.stop()
        self._read_timer = self.set_timer(MODEL_SETTLE_SECONDS, lambda: self._read_model(model))

    def _read_model(self, model: str) -> None:
        if model not in self.model_configs and model not in self._reading and model == self._model:
            self._reading.add(model)
            self._load_model_config(model)

    @work(thread=True, exit_on_error=False, group="model-config")
    def _load_model_config(self, model: str) -> tuple[str, Any]:
        from core.training.preflight import model_config

        try:
            return model, model_config(model)
        except Exception:  # noqa: BLE001 - only an advisory check: starting the run reports the real error
            return model, None

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "model-config" or event.state != WorkerState.SUCCESS:
            return
        event.stop()
        model, model_config = event.worker.result
        self._reading.discard(model)
        self.model_configs[model] = model_config
        if model == self._model:
            self.check()
