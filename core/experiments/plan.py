"""Planning a sweep: what it varies (`--grid name=a,b,c`, ranges `name=low:high`), and its points: every
combination, points drawn at random, or (`--trials N`) points an Optuna sampler chooses as the study goes.
Nothing here runs or records anything."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

from core.config import FIELDS, TrainConfig, parse_value
from core.errors import ConfigError
from core.format import format_duration, number, short_name

NOT_SWEPT = ("model", "dataset", "dataset_config", "text_columns", "label_column", "max_samples", "seed",
             "val_fraction", "test_fraction", "max_eval_samples", "baseline", "baseline_samples", "report_to",
             "num_processes", "accelerate_config", "device")
"""What a sweep may not vary: the data, its split and how validation is scored must be the same for every
point, or their validation scores would not be comparable (and where runs are logged is not a setting to tune)."""
MAX_POINTS = 1000
"""Runs in one sweep: more is a slip (ten settings of four values is a million runs)."""




def parse_grid(items: list[str]) -> dict[str, list[Any] | tuple[float, float]]:
    """`name=a,b,c` (values) or `name=lo:hi` (a range, for --random) per item; ConfigError names each bad one."""
    grid: dict[str, list[Any] | tuple[float, float]] = {}
    errors: dict[str, str] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not raw.strip(" ,"):
            errors[name or "grid"] = f"'{item}' is not name=value,value or name=low:high (e.g. learning_rate=2e-5,5e-5)"
            continue
        if name not in FIELDS:
            hint = parse_value(name, "")[1]
            if "did you mean" not in hint:
                hint += "; a sweep varies settings such as learning_rate, epochs, batch_size, weight_decay, " \
                        "warmup_ratio, max_length"
            errors[name] = f"in '{item}': {hint}"
            continue
        if name in grid or name in errors:
            errors[name] = f"is given twice; put all its values in one --grid {name}=a,b,c"
            continue
        if name in NOT_SWEPT:
            errors[name] = ("a sweep keeps the data, its split and its scoring the same for every run; set it once, "
                            "not per run")
            continue
        if ":" in raw:
            bounds = [parse_value(name, part) for part in raw.split(":", 1)]
            problem = next((p for _, p in bounds if p), None)
            if problem is None and FIELDS[name].type not in ("int", "float"):
                problem = "only numbers can have a range"
            if problem is None and not bounds[0][0] < bounds[1][0]:
                problem = "a range goes from low to high"
            if problem:
                errors[name] = problem
            else:
                grid[name] = (bounds[0][0], bounds[1][0])
            continue
        values = []
        for part in [p.strip() for p in raw.split(",") if p.strip()]:  # a trailing comma (typing on) is no value
            value, problem = parse_value(name, part)
            if problem:
                errors[name] = problem if repr(part) in problem else f"{part!r}: {problem}"
                break
            if value in values:
                errors[name] = f"{part} is in the list twice (a sweep runs each value once)"
                break
            values.append(value)
        else:
            grid[name] = values
    if errors:
        raise ConfigError(errors)
    return grid


def plan_points(grid: dict[str, Any], random_points: int | None = None, seed: int = 42,
                trials: int | None = None) -> list[dict[str, Any]]:
    """Every combination of the grid's values, or `random_points` points drawn from its values and ranges
    (learning-rate-like ranges spanning 10x or more are drawn evenly on a log scale), or `trials` points left for
    the study's sampler to choose (empty settings: chosen as the sweep goes)."""
    if not grid:
        raise ConfigError({"grid": "say what to vary: --grid learning_rate=2e-5,5e-5"})
    ranges = [name for name, v in grid.items() if isinstance(v, tuple)]
    for flag, count in (("random", random_points), ("trials", trials)):
        if count is not None and not 1 <= count <= MAX_POINTS:
            raise ConfigError({flag: f"--{flag} N takes 1 to {MAX_POINTS} points, not {count}"})
    if random_points and trials:
        raise ConfigError({"trials": "--random N draws every point at once, --trials N lets the sampler choose "
                                     "each from the ones before; give one of them"})
    if trials:
        return [{} for _ in range(trials)]
    if not random_points:
        if ranges:
            raise ConfigError({ranges[0]: "a range is searched with --trials N (or drawn from with --random N); give values (a,b,c) for a grid"})
        names = list(grid)
        size = math.prod(len(grid[n]) for n in names)
        if size > MAX_POINTS:
            raise ConfigError({"grid": f"{size} combinations is more than a sweep runs ({MAX_POINTS}); give fewer "
                                       "values, or draw some with --random N"})
        return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    rng = random.Random(seed)
    points = []
    for _ in range(random_points):
        point = {}
        for name, values in grid.items():
            if not isinstance(values, tuple):
                point[name] = rng.choice(values)
            elif FIELDS[name].type == "int":
                point[name] = rng.randint(int(values[0]), int(values[1]))
            elif values[0] > 0 and values[1] / values[0] >= 10:
                point[name] = float(f"{math.exp(rng.uniform(math.log(values[0]), math.log(values[1]))):.3g}")
            else:
                point[name] = float(f"{rng.uniform(*values):.3g}")
        points.append(point)
    return points


def point_configs(base: TrainConfig, points: list[dict[str, Any]]) -> list[TrainConfig]:
    """Each point's config; ConfigError for the first point the settings do not allow (before any run)."""
    configs = []
    for point in points:
        try:
            configs.append(TrainConfig.from_dict(point, base=base))
        except ConfigError as exc:
            raise ConfigError({k: f"{v} (in the sweep point {describe(point)})" for k, v in exc.errors.items()}) from None
    return configs


def grid_to_json(grid: dict[str, Any]) -> dict[str, Any]:
    """As the record keeps it: a list of values stays a list, a range becomes {"range": [low, high]}."""
    return {k: {"range": list(v)} if isinstance(v, tuple) else list(v) for k, v in grid.items()}


def grid_from_json(stored: Any) -> dict[str, Any]:
    """The grid of a record (a range as a tuple); a record of an earlier version kept ranges as plain lists."""
    if not isinstance(stored, dict):
        return {}
    return {k: tuple(v["range"]) if isinstance(v, dict) and isinstance(v.get("range"), list) else v
            for k, v in stored.items() if isinstance(v, (list, dict))}


def describe(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={number(v)}" for k, v in point.items())



def sweep_question(config: TrainConfig, grid: dict, preview=None, rate=None) -> str:
    """The plan a sweep's start confirmation shows: how many runs, what varies, and the time they all take."""
    from core.training.planning import estimate, plan

    points = plan_points(grid, seed=config.seed)
    rows = preview.rows_for(config) if preview is not None else None
    fresh = preview if preview is not None and not preview.stale(config) else None
    found = [estimate(c, plan(c, rows), rate, fresh) for c in point_configs(config, points)]
    varies = "; ".join(f"{name} over {', '.join(number(v) for v in values)}"
                       for name, values in grid.items())
    return "\n".join([
        f"Start a sweep of {len(points)} runs of {short_name(config.model)} on {short_name(config.dataset)}, "
        "one after another?",
        f"varying {varies}",
        f"estimated time: ~{format_duration(sum(f.seconds for f in found))} in all" if all(found)
        else "estimated time: unknown (no earlier run of this model on this device)",
        "Ranked by validation macro F1 when done (F4, tab 5); Stop & save stops the current run and the rest.",
    ])
