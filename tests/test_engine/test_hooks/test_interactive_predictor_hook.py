from types import SimpleNamespace

from mmengine.config import Config

from seg.apis import ModelClickPredictor
from seg.engine.hooks import BindInteractivePredictorHook
from seg.evaluation.metrics import InteractiveSegMetric, PanopticQualityMetric
from seg.registry import HOOKS, MODELS
from tests.conftest import REPO_ROOT


def test_binds_the_runner_model_to_interactive_metrics_only():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/rapsam/rapsam_tiny_coco_panoptic.py'))
    model = MODELS.build(cfg.model)
    interactive, pq = InteractiveSegMetric(), PanopticQualityMetric()
    runner = SimpleNamespace(model=model, test_evaluator=SimpleNamespace(metrics=[interactive, pq]))
    hook = HOOKS.build(dict(type='BindInteractivePredictorHook'))
    assert isinstance(hook, BindInteractivePredictorHook)
    hook.before_test(runner)
    assert isinstance(interactive.predictor, ModelClickPredictor)
    assert interactive.predictor.predictor.model is model
    assert not hasattr(pq, 'predictor')
