"""The runner of the table-driven bad-input tests of the tools' ``main(argv)``."""
from pathlib import Path
from typing import Callable

import pytest


def run_bad_input_case(main: Callable, root: Path, row: tuple, out_name: str) -> None:
    """One case ``(mutate, argv, extra, error, match)``: ``mutate(root)`` spoils the valid data
    (None: nothing), ``argv(root, *extra)`` builds the command line (``{root}`` in ``extra`` is
    the data folder); ``main`` must raise ``error`` matching ``match`` and write no ``out_name``."""
    mutate, argv, extra, error, match = row
    if mutate is not None:
        mutate(root)
    with pytest.raises(error, match=match):
        main(argv(root, *[e.replace('{root}', str(root)) for e in extra]))
    assert not (root / out_name).exists()
