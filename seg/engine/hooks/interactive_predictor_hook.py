"""Bind the runner's model to the interactive metrics before validation / testing."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from seg.registry import HOOKS


@HOOKS.register_module()
class BindInteractivePredictorHook(Hook):
    """``InteractiveSegMetric`` simulates clicks and needs a predictor it can call per click; the
    runner's test loop only gives it the data. This hook wraps the runner's model
    (``ModelClickPredictor``) and binds it to every such metric of the val / test evaluators.

    Args:
        feed_prev_mask: give the previous round's mask back as a mask prompt.
    """
    priority = 'LOW'

    def __init__(self, feed_prev_mask: bool = True) -> None:
        self.feed_prev_mask = feed_prev_mask

    def _bind(self, runner, evaluator) -> None:
        from seg.apis import ModelClickPredictor, SegPredictor
        from seg.evaluation.metrics import InteractiveSegMetric
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        metrics = [m for m in evaluator.metrics if isinstance(m, InteractiveSegMetric)]
        for metric in metrics:
            metric.bind_predictor(ModelClickPredictor(SegPredictor(model), self.feed_prev_mask))

    def before_val(self, runner) -> None:
        self._bind(runner, runner.val_evaluator)

    def before_test(self, runner) -> None:
        self._bind(runner, runner.test_evaluator)
