"""Semi-supervised VOS (J&F) of the toy stage-4 model on the toy DAVIS-2017 val split: first-frame
masks as prompts, frame-by-frame streaming through the memory, palette PNGs under the work dir."""
from mmengine.config import read_base

with read_base():
    from .eval_toy import *  # noqa: F401,F403

from mmcv.transforms import LoadImageFromFile, TransformBroadcaster

from seg.datasets import DAVISDataset
from seg.datasets.transforms import (FirstFrameMaskPrompts, LoadVideoFrameAnnotations,
                                     PackSegTrackInputs, SampleVideoClip)
from seg.evaluation.metrics import DAVISMetric

test_dataloader = dict(eval_loader, dataset=dict(
    type=DAVISDataset, data_root=toy_root + 'davis2017/', year='2017', split='val', test_mode=True,
    pipeline=[dict(type=SampleVideoClip, clip_length=None),
              dict(type=TransformBroadcaster, share_random_params=True,
                   transforms=[dict(type=LoadImageFromFile), dict(type=LoadVideoFrameAnnotations)]),
              dict(type=FirstFrameMaskPrompts),
              dict(type=PackSegTrackInputs)]))
test_evaluator = dict(type=DAVISMetric, binary_masks=False,
                      outfile_dir='work_dirs/fastsam2_toy_eval_vos/results')
