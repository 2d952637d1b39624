"""FastSAM2 stage 3 — video object segmentation (YouTube-VIS + DAVIS clips), streaming memory and
the DPSR temporal loss, starting from the stage-2 checkpoint.

Clips carry the semi-supervised VOS protocol: the first frame's ground-truth masks are the prompts
(``FirstFrameMaskPrompts``) and the detector decodes every later frame through its streaming memory
(``model.memory``), with ``loss_dpsr_mask`` / ``loss_dpsr_feat`` on consecutive frames.

Clip-length curriculum (the seed's 4-6 -> 12-16): ``MultiTaskSampler.clip_length`` starts at
(4, 6); ``ClipLengthCurriculumHook`` switches it to (12, 16) at ``long_clip_iter``.

No teacher here: SAM2 would only be run per frame (its video path is not distilled), at 12-16 frames
per clip the cost of the largest stage; the memory is trained by the ground truth and DPSR.
(``--teacher-*`` flags are therefore refused for this stage.)

    python tools/train_fast_sam2.py configs/fastsam2/stage3_vos.py --stage 3
"""
from mmengine.config import read_base

with read_base():
    from .stage1_backbone_distill import *  # noqa: F401,F403
    from .._base_.datasets.davis import davis_vos_source
    from .._base_.datasets.youtube_vis_2019 import ytvis_vos_source

from seg.engine.hooks import ClipLengthCurriculumHook

stage = 3
work_dir = 'work_dirs/fastsam2_stage3'
load_from = 'work_dirs/fastsam2_stage2/iter_40000.pth'

model.teacher = None
model.distill = None
model.backbone.distill_keys = ()

max_iters = 40000
long_clip_iter = max_iters // 2
short_clips, long_clips = (4, 6), (12, 16)
train_dataloader.update(batch_size=1)
train_dataloader.sampler.update(batch_size=1, clip_length=short_clips)
train_dataloader.dataset.sources = dict(ytvis_vos=ytvis_vos_source, davis_vos=davis_vos_source)
custom_hooks = [dict(type=ClipLengthCurriculumHook,
                     schedule=[(0, short_clips), (long_clip_iter, long_clips)])]

warmup_iters = max_iters // 20
train_cfg.update(max_iters=max_iters, val_interval=max_iters)
param_scheduler[0].update(end=warmup_iters)
param_scheduler[1].update(begin=warmup_iters, end=max_iters)
auto_scale_lr.base_batch_size = 8  # 8 GPUs x 1 clip

# keep the config to what it runs: the runner formats the whole config (yapf) several times
del ytvis_vos_source, davis_vos_source
