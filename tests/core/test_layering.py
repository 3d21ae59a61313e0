import subprocess
import sys


def test_core_never_imports_textual_or_rich():
    code = (
        "import sys, core, core.cli, core.train, core.config, core.data, core.runs, core.predict, core.evaluate\n"
        "import core.callback, core.stats, core.tokenize, core.model\n"
        "bad = [m for m in ('textual', 'rich') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_importing_core_is_cheap():
    code = "import sys, core, core.cli\nprint(','.join(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
