"""Shared pytest fixtures."""
import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'


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
