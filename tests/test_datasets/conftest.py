"""Fixtures for the dataset tests."""
import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def _mmdet_scope():
    """Pipelines built from configs resolve ``type=`` names in mmdet's scope, as configs do."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture(scope='session')
def toy(tmp_path_factory):
    """The toy dataset, written once per test session (about a second)."""
    from seg.datasets.toy_dataset import make_toy_dataset
    return make_toy_dataset(tmp_path_factory.mktemp('toy'), seed=0)
