"""The layers of core, as the import-linter contracts in pyproject.toml state them, hold."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_core_never_imports_textual_or_rich():
    """Every core module (found by walking the package, not listed by hand) imports without the UI libraries."""
    code = (
        "import importlib, pkgutil, sys, core\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'core.') if not m.name.endswith('__main__')]\n"
        "for name in names: importlib.import_module(name)\n"
        "bad = [m for m in ('textual', 'rich') if m in sys.modules]\n"
        "print(len(names), ','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, bad = out.stdout.split(" ", 1)
    assert int(count) >= 40 and bad.strip() == ""


def test_importing_core_is_cheap():
    code = "import sys, core, core.cli\nprint(','.join(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_import_contracts_hold():
    """Layers inside core, core never importing the UI, no cycles: `lint-imports` over pyproject.toml."""
    out = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
