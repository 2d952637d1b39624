"""FastSAM2 stage 4 — joint multi-task fine-tuning of panoptic, interactive and VOS, starting from
the stage-3 checkpoint, with the TaskRouter on and the teacher as a regulariser (half weight).

Multi-task balancing: alternating task batches (``MultiTaskSampler``: every optimizer step is one
source's batch, on every GPU; the sources alternate by their ratios with smooth weighted round
robin, so over any window the shares match the ratios). Ratios: panoptic 1, interactive 1
(images and clips 0.5 each), VOS 1 (YouTube-VIS and DAVIS 0.5 each). ``--task-mode X`` keeps the
sources of task X.

The VOS clips use the long clips of stage 3's curriculum from the start.

    python tools/train_fast_sam2.py configs/fastsam2/stage4_joint.py --stage 4
"""
from mmengine.config import read_base

with read_base():
    from .stage1_backbone_distill import *  # noqa: F401,F403
    from .._base_.datasets.coco_panoptic_sources import coco_interactive_source
    from .._base_.datasets.davis import davis_vos_source
    from .._base_.datasets.youtube_vis_2019 import ytvis_interactive_source, ytvis_vos_source

stage = 4
work_dir = 'work_dirs/fastsam2_stage4'
load_from = 'work_dirs/fastsam2_stage3/iter_40000.pth'

model.distill.update(alpha=0.5, beta=0.25, gamma=1.0, delta=0.2, loss_weight=0.5)

long_clips = (12, 16)
train_dataloader.update(batch_size=1)
train_dataloader.sampler.update(batch_size=1, clip_length=long_clips)
train_dataloader.dataset.sources = dict(
    coco_panoptic=train_dataloader.dataset.sources.coco_panoptic,  # stage 1's, ratio 1
    coco_interactive=dict(coco_interactive_source, ratio=0.5),
    ytvis_interactive=dict(ytvis_interactive_source, ratio=0.5),
    ytvis_vos=dict(ytvis_vos_source, ratio=0.5),
    davis_vos=dict(davis_vos_source, ratio=0.5),
)

max_iters = 20000
warmup_iters = max_iters // 20
train_cfg.update(max_iters=max_iters, val_interval=max_iters)
param_scheduler[0].update(end=warmup_iters)
param_scheduler[1].update(begin=warmup_iters, end=max_iters)
auto_scale_lr.base_batch_size = 8

# keep the config to what it runs: the runner formats the whole config (yapf) several times
del coco_interactive_source, ytvis_interactive_source, ytvis_vos_source, davis_vos_source
