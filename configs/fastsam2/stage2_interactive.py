"""FastSAM2 stage 2 — interactive segmentation (YouTube-VIS interactive clips + COCO prompts),
SAM2 mask distillation, starting from the stage-1 checkpoint.

Prompts are the ones stored offline (``data/README.md``): ``fastsam2_interactive.json`` (COCO
panoptic objects: clicks, box, text) and ``ytvis_interactive_meta.pkl`` (YouTube-VIS clips with
prompts on their key frames, i.e. on the frame where each object first appears, mid-clip included),
mapped through the augmentation by ``LoadStoredPrompts``. The detector's SAM-style interaction
rounds (``model.train_cfg.interactive_rounds``: corrective clicks + the previous mask fed back)
and its routed prompt exits train what the click evaluation and the TaskRouter run.

Distillation: the teacher answers exactly the student's final prompts (mask prompts included);
``loss_distill_mask`` (BCE to SAM2's mask) and ``loss_distill_prompt`` (KL of the spatial
distributions) dominate, the feature term stays on at half weight (alpha 0.5, beta 0.25).

    python tools/train_fast_sam2.py configs/fastsam2/stage2_interactive.py --stage 2
"""
from mmengine.config import read_base

with read_base():
    from .stage1_backbone_distill import *  # noqa: F401,F403
    from .._base_.datasets.coco_panoptic_sources import coco_interactive_source
    from .._base_.datasets.youtube_vis_2019 import ytvis_interactive_source

stage = 2
work_dir = 'work_dirs/fastsam2_stage2'
load_from = 'work_dirs/fastsam2_stage1/iter_40000.pth'

model.distill.update(alpha=0.5, beta=0.25, gamma=1.0, delta=0.2, loss_weight=1.0)

train_dataloader.update(batch_size=1)  # clips of 8-16 frames
train_dataloader.sampler.batch_size = 1
train_dataloader.dataset.sources = dict(coco_interactive=coco_interactive_source,
                                        ytvis_interactive=ytvis_interactive_source)

max_iters = 40000
warmup_iters = max_iters // 20
train_cfg.update(max_iters=max_iters, val_interval=max_iters)
param_scheduler[0].update(end=warmup_iters)
param_scheduler[1].update(begin=warmup_iters, end=max_iters)
auto_scale_lr.base_batch_size = 8  # 8 GPUs x 1

# keep the config to what it runs: the runner formats the whole config (yapf) several times
del coco_interactive_source, ytvis_interactive_source
