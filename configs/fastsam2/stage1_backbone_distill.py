"""FastSAM2 stage 1 — backbone distillation (R50, COCO + YouTube-VIS frames, SAM2 teacher online).

The dual-path backbone (CLIP RN50 trunk at 0.1x lr, geometry branch + token fusion at 1.0x) learns
SAM2's features: ``SAM2DistillLoss.feature_loss`` on three levels (neck / stride 4, CLIP stage 2 /
stride 8, the fused stride-16 level) against SAM2 Hiera-L's FPN levels, plus its mask distillation
on the prompted YouTube-VIS frames. The head trains with its usual losses alongside (the RapSAM
panoptic + interactive losses; set their weights to 0 for a pure feature distillation).

Data (``MultiTaskDataset`` + ``MultiTaskSampler``, one source per batch, 1:1):
``coco_panoptic`` (task panoptic: COCO train2017 crops, object queries) and ``ytvis_frames`` (task
interactive: single YouTube-VIS frames with online prompts). ``--task-mode panoptic`` /
``interactive`` keeps one of them.

    python tools/train_fast_sam2.py configs/fastsam2/stage1_backbone_distill.py --stage 1
    bash tools/dist_train.sh configs/fastsam2/stage1_backbone_distill.py 8 --stage 1 \
        --teacher-checkpoint data/pretrained/sam2.1_hiera_large.pt

Needs ``data/pretrained/RN50-quickgelu_openai.bin`` (CLIP) and the teacher checkpoint.
"""
from mmengine.config import read_base

# Only the names used are imported (the runner formats the whole config several times).
with read_base():
    from .model_fastsam2_r50 import model, r50_clip_channels
    from .runtime_default import *  # noqa: F401,F403
    from .._base_.datasets.coco_panoptic_sources import coco_panoptic_source
    from .._base_.datasets.fastsam2_vocabulary import (fastsam2_aliases, fastsam2_classes,
                                                       fastsam2_stuff_classes,
                                                       fastsam2_thing_classes)
    from .._base_.datasets.youtube_vis_2019 import ytvis_frame_source
    from .._base_.models.sam2_teachers import sam2_large_teacher, sam2_large_teacher_channels

from seg.datasets import MultiTaskDataset, MultiTaskSampler
from seg.models import VideoSegDataPreprocessor
from seg.models.utils import SAM2DistillLoss

stage = 1
work_dir = 'work_dirs/fastsam2_stage1'
load_from = None  # the CLIP weights come from model.backbone.pretrained

# --- model: one class vocabulary for every stage, images and clips through one preprocessor
model.update(class_names=fastsam2_classes)
model.panoptic_head.update(num_things_classes=len(fastsam2_thing_classes),
                           num_stuff_classes=len(fastsam2_stuff_classes))
model.data_preprocessor.type = VideoSegDataPreprocessor
# the CLIP trunk trains (0.1x lr, see runtime_default); its BatchNorms sync across GPUs
model.backbone.update(freeze=False, distill_keys=('stage2', 'fused'))
sync_bn = 'torch'
distill_pairs = [
    dict(student='neck', teacher=0, student_channels=256,
         teacher_channels=sam2_large_teacher_channels[0], weight=1.0),
    dict(student='stage2', teacher=1, student_channels=r50_clip_channels[1],
         teacher_channels=sam2_large_teacher_channels[1], weight=0.5),
    dict(student='fused', teacher=2, student_channels=r50_clip_channels[2],
         teacher_channels=sam2_large_teacher_channels[2], weight=1.0),
]
model.update(teacher=sam2_large_teacher,
             distill=dict(type=SAM2DistillLoss, pairs=distill_pairs, alpha=1.0, beta=0.5,
                          gamma=1.0, delta=0.2, loss_weight=1.0))

# --- data
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type=MultiTaskSampler, batch_size=2, shuffle=True),
    batch_sampler=None,
    dataset=dict(type=MultiTaskDataset, classes=fastsam2_classes,
                 sources=dict(coco_panoptic=coco_panoptic_source, ytvis_frames=ytvis_frame_source),
                 num_thing_classes=len(fastsam2_thing_classes), aliases=fastsam2_aliases))
# --- schedule
max_iters = 40000
warmup_iters = max_iters // 20
train_cfg.update(max_iters=max_iters, val_interval=max_iters)
param_scheduler[0].update(end=warmup_iters)
param_scheduler[1].update(begin=warmup_iters, end=max_iters)
auto_scale_lr.base_batch_size = 16  # 8 GPUs x 2

# keep the config to what it runs: the runner formats the whole config (yapf) several times
del (coco_panoptic_source, ytvis_frame_source, fastsam2_aliases, fastsam2_classes,
     fastsam2_stuff_classes, fastsam2_thing_classes, sam2_large_teacher,
     sam2_large_teacher_channels, r50_clip_channels, distill_pairs)
