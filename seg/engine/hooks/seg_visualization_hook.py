"""Overlay pictures of the test predictions (``tools/test.py --show / --show-dir``)."""
from pathlib import Path
from typing import Any, Optional, Sequence

import mmcv
import numpy as np
from mmengine.fileio import get
from mmengine.hooks import Hook
from PIL import Image

from seg.registry import HOOKS
from seg.utils.atomic_io import atomic_save_png


@HOOKS.register_module()
class SegVisualizationHook(Hook):
    """Draw every test image's predictions (each frame of a video sample) through the runner's
    visualizer: the panoptic map when the sample has one (segments coloured and named by class),
    else the predicted masks with the prompts that produced them.

    mmdet's ``DetVisualizationHook`` stops on an all-void panoptic map and on video samples; this
    hook draws with ``seg.apis.visualization``, which handles both.

    Args:
        draw: draw at all (off by default: testing stays as fast as without the hook).
        interval: draw every ``interval``-th image.
        show: show each picture in a window (``wait_time`` seconds; 0 waits for a key).
        test_out_dir: folder for the pictures (``<stem>.png``; ``<video>/<stem>.png`` for frames);
            a relative one is under ``<work_dir>/<timestamp>/``, as in mmdet.
    """
    priority = 'NORMAL'

    def __init__(self, draw: bool = False, interval: int = 1, show: bool = False,
                 wait_time: float = 0., test_out_dir: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        if interval < 1:
            raise ValueError(f'SegVisualizationHook: interval must be >= 1, got {interval}')
        self.draw, self.interval, self.show, self.wait_time = draw, interval, show, wait_time
        self.test_out_dir = test_out_dir
        self.backend_args = backend_args
        self._out_dir: Optional[Path] = None
        self._index = 0

    def before_test(self, runner) -> None:
        self._index = 0
        self._out_dir = None
        if self.draw and self.test_out_dir is not None:
            out = Path(self.test_out_dir)
            self._out_dir = out if out.is_absolute() else Path(runner.work_dir) / runner.timestamp / out

    def after_test_iter(self, runner, batch_idx: int, data_batch: Any = None,
                        outputs: Optional[Sequence[Any]] = None) -> None:
        if not self.draw:
            return
        classes = (runner.visualizer.dataset_meta or {}).get('classes')
        for sample in outputs or ():
            video = 'video_data_samples' in sample
            for frame in (sample.video_data_samples if video else [sample]):
                self._index += 1
                if (self._index - 1) % self.interval:
                    continue
                img_path = Path(frame.img_path)
                name = f'{img_path.parent.name}/{img_path.stem}' if video else img_path.stem
                picture = self.draw_sample(frame, classes)
                if self._out_dir is not None:
                    atomic_save_png(Image.fromarray(picture), self._out_dir / f'{name}.png')
                if self.show:
                    runner.visualizer.show(picture, win_name=name, wait_time=self.wait_time)

    def draw_sample(self, sample: Any, classes: Optional[Sequence[str]]) -> np.ndarray:
        """RGB overlay of one image's predictions (the image itself when it has none)."""
        # seg.apis builds on seg.models, which `import seg` loads after this module
        from seg.apis.visualization import draw_panoptic, draw_prompt_result
        image = mmcv.imfrombytes(get(sample.img_path, backend_args=self.backend_args), flag='color')
        if image is None:
            raise ValueError(f'SegVisualizationHook: could not decode {sample.img_path}')
        if 'pred_panoptic_seg' in sample:
            if classes is None:
                raise KeyError('SegVisualizationHook: the dataset metainfo has no "classes" to name '
                               'the panoptic segments')
            return draw_panoptic(image, sample, classes)
        if 'pred_instances' in sample and 'masks' in sample.pred_instances:
            named = classes is not None and {'labels', 'scores'} <= set(sample.pred_instances.keys())
            return draw_prompt_result(image, sample, classes if named else None)
        return np.ascontiguousarray(image[..., ::-1])
