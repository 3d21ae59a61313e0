import pytest

from core.config import (
    PRESETS,
    TrainConfig,
    dump_toml,
    fields_by_group,
    help_text,
    load_toml,
    parse_value,
    preset,
    save_toml,
)
from core.errors import ConfigError
from core.training.planning import plan


def test_defaults_are_the_course_recipe():
    c = TrainConfig()
    assert (c.model, c.dataset) == ("distilbert-base-uncased", "amazon_polarity")
    assert (c.learning_rate, c.batch_size, c.epochs, c.weight_decay, c.max_length, c.seed) == (2e-5, 16, 3, 0.01, 256, 42)
    assert (c.max_samples, c.val_fraction, c.test_fraction) == (5000, 0.15, 0.15)


def test_every_field_has_help_and_a_group():
    names = [n for group in fields_by_group().values() for n in group]
    assert set(names) == set(TrainConfig().to_dict())
    assert all(help_text(n).strip() for n in names)


def test_config_is_frozen_and_replace_validates():
    c = TrainConfig()
    with pytest.raises(AttributeError):
        c.epochs = 5  # type: ignore[misc]
    assert c.replace(epochs=5).epochs == 5 and c.epochs == 3
    with pytest.raises(ConfigError) as err:
        c.replace(epochs=0, batch_size=-1)
    assert set(err.value.errors) == {"epochs", "batch_size"}


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"epochs": "three", "learning_rate": "-1", "precision": "fp8", "lr": "1"})
    errors = err.value.errors
    assert errors["epochs"] == "must be a whole number, not 'three'"
    assert "at least" in errors["learning_rate"]
    assert "one of: auto, fp32, fp16, bf16" in errors["precision"]
    assert errors["lr"].startswith("unknown setting")


def test_parse_value_handles_form_text():
    assert parse_value("learning_rate", " 3e-5 ") == (3e-5, None)
    assert parse_value("text_columns", "title, content") == (("title", "content"), None)
    assert parse_value("max_samples", "all") == (0, None)
    assert parse_value("baseline", "no") == (False, None)
    assert parse_value("epochs", "2.5")[1] == "must be a whole number, not '2.5'"
    assert parse_value("epochs", "")[1] is not None
    assert parse_value("bacth_size", "8")[1] == "unknown setting; did you mean 'batch_size'?"


def test_split_shares_must_leave_training_rows():
    with pytest.raises(ConfigError) as err:
        TrainConfig(val_fraction=0.4, test_fraction=0.4)
    assert "test_fraction" in err.value.errors


def test_toml_round_trip(tmp_path):
    c = TrainConfig(epochs=2, text_columns=("title", "content"), learning_rate=3e-5, baseline=False)
    path = save_toml(c, tmp_path / "job.toml")
    assert load_toml(path) == c
    assert "[optimisation]" in dump_toml(c) and "# Peak learning rate" in dump_toml(c)


def test_toml_flat_keys_and_errors(tmp_path):
    path = tmp_path / "flat.toml"
    path.write_text('epochs = 1\nbatch_size = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_toml(path)
    assert "batch_size" in err.value.errors
    path.write_text("epochs = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_toml(tmp_path / "missing.toml")


def test_presets_keep_the_data_source():
    base = TrainConfig(model="m", dataset="d.csv")
    quick = preset("quick check", base)
    assert (quick.epochs, quick.max_samples, quick.model, quick.dataset) == (1, 500, "m", "d.csv")
    assert preset("course default") == TrainConfig()
    assert set(PRESETS) == {"quick check", "course default", "thorough"}


def test_plan_counts_steps():
    p = plan(TrainConfig(max_samples=5000, batch_size=16, epochs=3, warmup_ratio=0.1))
    assert (p.train_samples, p.steps_per_epoch, p.total_steps, p.warmup_steps) == (3500, 219, 657, 66)
    p = plan(TrainConfig(max_samples=0, batch_size=10, gradient_accumulation=2, epochs=1), available_rows=1000)
    assert (p.train_samples, p.effective_batch, p.steps_per_epoch) == (700, 20, 35)
