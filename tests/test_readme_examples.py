"""README's example output is the CLI's, regenerated, not typed (it went stale before)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import readme_examples  # noqa: E402


def test_readme_example_is_what_the_cli_prints():
    text = readme_examples.README.read_text(encoding="utf-8")
    assert readme_examples.current_block(text) == readme_examples.example_block(), "run: .venv/bin/python packaging/readme_examples.py --write"
