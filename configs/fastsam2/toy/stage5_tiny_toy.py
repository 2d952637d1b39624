"""Toy stage 5 (deployment export): ``stage5_deploy``'s settings on the tiny model; exports the toy
stage-4 checkpoint and evaluates J&F on the toy DAVIS val split.

    python tools/train_fast_sam2.py configs/fastsam2/toy/stage5_tiny_toy.py --stage 5
    python tools/test.py configs/fastsam2/toy/stage5_tiny_toy.py \
        work_dirs/fastsam2_toy_stage5/fastsam2_deploy.pth
"""
from mmengine.config import read_base

with read_base():
    from ..stage5_deploy import *  # noqa: F401,F403
    from .toy_base import toy_model, toy_root

work_dir = 'work_dirs/fastsam2_toy_stage5'
load_from = 'work_dirs/fastsam2_toy_stage4/iter_200.pth'
model = toy_model
model.update(teacher=None, distill=None)
model.backbone.distill_keys = ()
model.data_preprocessor.resize_longest_side = 128  # the toy processing size
sync_bn = None
test_dataloader.update(num_workers=0, persistent_workers=False)
test_dataloader.dataset.update(data_root=toy_root + 'davis2017/', split='val')
test_evaluator.outfile_dir = 'work_dirs/fastsam2_toy_stage5/davis_results'

# keep the config to what it runs: the runner formats the whole config (yapf) several times
del toy_model, toy_root
