"""The linter configured in pyproject.toml ([tool.ruff]) passes on the package, the tests and
the benchmarks, so CI fails on a new violation. ruff is part of the test extra."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "mindgan", "tests", "benchmarks"],
                            cwd=ROOT, capture_output=True, text=True)
    assert "No module named ruff" not in result.stderr, "ruff is missing: pip install -e '.[test]'"
    assert result.returncode == 0, result.stdout + result.stderr
