"""RapSAM with the OpenAI CLIP RN50 backbone (frozen), COCO panoptic + interactive, 90k iters."""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.coco_panoptic_interactive import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.models.clip_backbones import r50_clip, r50_clip_channels
    from .._base_.models.rapsam import *  # noqa: F401,F403
    from .._base_.schedules.schedule_90k import *  # noqa: F401,F403

model.update(backbone=r50_clip, class_names=class_names)
model.neck.in_channels = r50_clip_channels
model.panoptic_head.text_dim = 1024  # RN50 CLIP embedding width
