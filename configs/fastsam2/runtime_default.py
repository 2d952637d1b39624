"""Runtime and schedule shared by the FastSAM2 stage configs (``stage*.py``).

- AdamW, lr 1e-4, weight decay 0.05; parameter-wise lr: the CLIP trunk (``backbone.visual``) at
  0.1x, the geometry branch, token fusion and token pruner at 1.0x (they are new and must move
  more: the seed's "geometry branch > CLIP"); no decay on norms and learned query embeddings.
- Linear warm-up over the first 5 % of ``max_iters``, then cosine decay to 1e-6. A stage config
  that changes ``max_iters`` also updates ``param_scheduler`` (``warmup_iters = max_iters // 20``).
- Gradient clipping (L2 norm 0.01, Mask2Former's); AMP: ``--amp [--amp-dtype bfloat16]`` of
  ``tools/train_fast_sam2.py`` switches to mmengine's ``AmpOptimWrapper``.
- Every loss term is its own key (``loss_distill_feat``, ``loss_prompt_mask``, ``exit1.``...), which
  mmengine logs separately; checkpoints every ``checkpoint_interval`` iterations with the atomic
  backend (``default_runtime``), the last ``max_keep_ckpts`` kept.
- DDP with ``find_unused_parameters``: a batch is either images or clips of one task, so some
  parameters (memory reader, prompt encoder, exits) are unused in some steps.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.default_runtime import *  # noqa: F401,F403

from mmengine.optim import CosineAnnealingLR, LinearLR, OptimWrapper
from mmengine.runner import IterBasedTrainLoop
from torch.optim import AdamW

max_iters = 40000
warmup_iters = max_iters // 20  # 5 %
checkpoint_interval = 2000

optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=AdamW, lr=1e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    # the longest matching key wins: the geometry modules override the backbone's 0.1x
    paramwise_cfg=dict(
        custom_keys={'backbone': dict(lr_mult=0.1, decay_mult=1.0),
                     'backbone.geom_branch': dict(lr_mult=1.0, decay_mult=1.0),
                     'backbone.token_fusion': dict(lr_mult=1.0, decay_mult=1.0),
                     'backbone.token_pruner': dict(lr_mult=1.0, decay_mult=1.0),
                     'query_feat': dict(decay_mult=0.0),
                     'no_object_embed': dict(decay_mult=0.0)},
        norm_decay_mult=0.0))
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=warmup_iters, end=max_iters, eta_min=1e-6),
]
# training only: evaluate checkpoints with tools/test.py and the evaluation configs
train_cfg = dict(type=IterBasedTrainLoop, max_iters=max_iters, val_interval=max_iters)
# the recipe's total batch: 8 GPUs x 2 (--auto-scale-lr scales the lr to the actual one)
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks.logger.interval = 50
default_hooks.checkpoint.update(interval=checkpoint_interval, max_keep_ckpts=3, save_last=True)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
randomness = dict(seed=0)
