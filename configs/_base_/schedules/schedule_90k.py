"""AdamW, lr 1e-4, backbone lr x0.1, linear warmup then cosine decay, iteration-based (90k iters)."""
from mmengine.optim import CosineAnnealingLR, LinearLR, OptimWrapper
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from torch.optim import AdamW

max_iters = 90000
warmup_iters = max_iters // 20  # 5 %, as the design plan asks
optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=AdamW, lr=1e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1, decay_mult=1.0),
                                    'query_feat': dict(decay_mult=0.0),
                                    'no_object_embed': dict(decay_mult=0.0)},
                       norm_decay_mult=0.0))
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=warmup_iters, end=max_iters, eta_min=1e-6),
]
train_cfg = dict(type=IterBasedTrainLoop, max_iters=max_iters, val_interval=5000)
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)
auto_scale_lr = dict(enable=False, base_batch_size=16)
