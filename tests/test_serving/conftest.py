"""Fixtures of the serving tests: one tiny model (random init, 256 px) shared by every app, small
frames of the shared bear sequence, and a TestClient per test with a fresh app."""
import io
import zipfile
from pathlib import Path
from typing import Callable, List

import cv2
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from seg.serving import MicroBatcher, ModelEngine, ServerSettings, create_app
from tests.conftest import REPO_ROOT

TINY = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')
SIDE = 256  # frames are resized to this longer side: every test runs at the model's size


@pytest.fixture(scope='session')
def base_engine() -> ModelEngine:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match='RANDOM weights'):
        return ModelEngine.from_config(TINY, None, 'cpu', SIDE)


@pytest.fixture
def make_engine(base_engine) -> Callable[..., ModelEngine]:
    """A fresh engine (its own batcher) over the shared model."""
    def make(window_ms: float = 5.0, max_batch: int = 32) -> ModelEngine:
        return ModelEngine(base_engine.model, MicroBatcher(window_ms, max_batch), base_engine.info)
    return make


@pytest.fixture(scope='session')
def bear_dir(shared_data) -> Path:
    return shared_data / 'davis2017_sample/JPEGImages/480p/bear'


@pytest.fixture(scope='session')
def frames(bear_dir) -> List[np.ndarray]:
    """Four RGB frames 256x144: the bear's two, then the same shifted by 4 px."""
    out = []
    for shift in (0, 4):
        for path in sorted(bear_dir.glob('*.jpg')):
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            rgb = cv2.resize(rgb, (SIDE, 144), interpolation=cv2.INTER_AREA)
            out.append(np.roll(rgb, shift, axis=1))
    return out


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode('.jpg', rgb[..., ::-1])[1].tobytes()


def zip_frames(frames: List[np.ndarray], names=None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for i, f in enumerate(frames):
            z.writestr(names[i] if names else f'clip/{i:05d}.jpg', jpeg(f))
    return buf.getvalue()


@pytest.fixture
def make_client(make_engine) -> Callable[..., TestClient]:
    """``make_client(settings=..., window_ms=...)`` -> a started TestClient (closed after the test)."""
    clients = []

    def make(settings: ServerSettings = None, window_ms: float = 5.0) -> TestClient:
        engine = make_engine(window_ms)
        client = TestClient(create_app(engine, settings or ServerSettings()))
        client.__enter__()
        client.engine = engine
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()
