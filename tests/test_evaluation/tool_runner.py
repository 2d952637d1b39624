"""Load a tools/evaluation script's ``main`` for in-process CLI tests."""
import runpy
from pathlib import Path
from typing import Callable

TOOLS = Path(__file__).resolve().parents[2] / 'tools' / 'evaluation'


def load_main(script: str) -> Callable:
    return runpy.run_path(str(TOOLS / script), run_name='tool_under_test')['main']
