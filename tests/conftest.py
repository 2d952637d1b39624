"""Shared pytest fixtures, and the guard that the tests run this checkout's ``seg``."""
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'

# A venv shared by several clones (or a stale PYTHONPATH) would silently test another tree's code.
_seg = importlib.util.find_spec('seg')
if _seg is None or Path(_seg.origin).resolve() != REPO_ROOT / 'seg' / '__init__.py':
    raise ImportError(f"`import seg` resolves to {_seg.origin if _seg else 'nothing'}, not to the checkout "
                      f'under test ({REPO_ROOT}/seg): run the tests with tools/run_tests.sh (its venv '
                      f'holds this checkout) or with PYTHONPATH={REPO_ROOT}')
# ... and the tools the tests start as subprocesses import the same tree
os.environ['PYTHONPATH'] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get('PYTHONPATH')])])


def load_script(relative_path: str) -> ModuleType:
    """Import a script of the checkout that is not in a package (``demo/demo.py``, ``tools/...``)
    as a module, to call its ``main`` / functions in-process."""
    path = REPO_ROOT / relative_path
    spec = importlib.util.spec_from_file_location(f'script_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """The real data samples laid beside the checkout (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f'{SHARED_DATA} is missing: clone the repo with ../shared beside it')
    return SHARED_DATA


@pytest.fixture(scope='session', autouse=True)
def _private_cache_dir(tmp_path_factory):
    """Models built by the tests (random text towers) cache their class-name embeddings in a
    session folder, not in the user's ``~/.cache/fastsam2`` (subprocesses inherit it)."""
    previous = os.environ.get('FASTSAM2_CACHE_DIR')
    os.environ['FASTSAM2_CACHE_DIR'] = str(tmp_path_factory.mktemp('fastsam2_cache'))
    yield
    if previous is None:
        os.environ.pop('FASTSAM2_CACHE_DIR', None)
    else:
        os.environ['FASTSAM2_CACHE_DIR'] = previous


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope='session', autouse=True)
def _one_cpu_thread():
    """Tiny models gain nothing from intra-op threads, and on a CPU shared with other jobs the
    threads of one op wait for each other (several times slower): run the tests on one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
