"""RapSAM with the LAION CLIP ConvNeXt-L (320 px) backbone (frozen), COCO panoptic + interactive."""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.coco_panoptic_interactive import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.models.clip_backbones import convnext_large_clip, convnext_large_clip_channels
    from .._base_.models.rapsam import *  # noqa: F401,F403
    from .._base_.schedules.schedule_90k import *  # noqa: F401,F403

model.update(backbone=convnext_large_clip, class_names=class_names)
model.neck.in_channels = convnext_large_clip_channels
model.panoptic_head.text_dim = 768  # convnext_large_d_320 CLIP embedding width
