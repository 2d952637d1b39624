"""RapSAM at RAP-SAM's shapes: 256-d features, 100 object queries, 3 stages. Configs fill in the
backbone (``clip_backbones``), the neck's ``in_channels``, ``text_dim`` and ``class_names``."""
from seg.models import RapSAM, RapSAMVideoHead, SegDataPreprocessor, YOSONeck

# CLIP's normalisation, in 0-255 units
data_preprocessor = dict(
    type=SegDataPreprocessor,
    mean=[122.7709383, 116.7460125, 104.09373615], std=[68.5005327, 66.6321579, 70.32316305],
    bgr_to_rgb=True, pad_size_divisor=32, pad_mask=True, mask_pad_value=0, pad_seg=True,
    seg_pad_value=255)

model = dict(
    type=RapSAM,
    data_preprocessor=data_preprocessor,
    backbone=None,
    neck=dict(type=YOSONeck, in_channels=None, agg_dim=128, hidden_dim=256),
    panoptic_head=dict(
        type=RapSAMVideoHead, num_things_classes=80, num_stuff_classes=53, num_queries=100,
        num_stages=3, feat_channels=256, num_heads=8, ffn_channels=2048, text_dim=None,
        train_cfg=dict(num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75)),
    class_names=None,
    test_cfg=dict(panoptic_on=True, semantic_on=False, instance_on=True, max_per_image=100,
                  object_mask_thr=0.8, iou_thr=0.8, filter_low_score=True, max_per_video=10))
