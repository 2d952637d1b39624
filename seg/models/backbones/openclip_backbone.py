"""OpenCLIP visual tower as a 4-level feature pyramid (strides 4/8/16/32), plus its text tower.

Two open_clip vision families have a conv pyramid: ``ModifiedResNet`` ('RN50', ...: a 3-conv stem
with an avg-pool, then layer1..4) and timm ConvNeXt towers ('convnext_large_d_320', ...: a patchify
stem, then stages 0..3). The backbone keeps the stem and the 4 stages and drops the image-embedding
heads (attention pool / timm head + projection), which dense prediction does not use.

Optional FastSAM2 extensions (all off by default, which is the RapSAM baseline):

- ``geom_branch``: a light geometry branch (``GeomBranch``) on the stride-4/8 features;
- ``token_fusion``: a ``TokenFusionModule`` in which the semantic tokens of one level query the
  geometry tokens of the same stride; its zero-initialised output projection makes the backbone
  reproduce the baseline exactly at initialisation;
- ``token_pruner``: a ``TokenPruner`` restricting that fusion to the top-scoring tokens;
- ``distill_keys``: features kept in ``self.distill_feats`` for feature distillation.
"""
import json
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import open_clip
import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from open_clip.factory import parse_model_name
from open_clip.modified_resnet import ModifiedResNet
from open_clip.timm_model import TimmModel
from torch import Tensor, nn

from seg.registry import MODELS

from .geom_branch import GeomBranch
from .modules import TokenFusionModule, TokenPruner

STRIDES = (4, 8, 16, 32)


def register_open_clip_config(model_name: str, model_cfg: dict) -> None:
    """Make ``model_cfg`` buildable as ``open_clip.create_model(model_name)``.

    open_clip's public way to add an architecture is ``add_model_config(path)``, which reads
    ``<model_name>.json`` files; the dict is written to such a file in a temporary folder (open_clip
    keeps the parsed config after the file is gone). Registering the same config twice is a no-op;
    a different config under a name open_clip already knows is an error.
    """
    missing = {'embed_dim', 'vision_cfg', 'text_cfg'} - set(model_cfg)
    if missing:
        raise ValueError(f'OpenCLIPBackbone: model_cfg for {model_name!r} lacks key(s) {sorted(missing)} '
                         f'(open_clip model configs need embed_dim, vision_cfg and text_cfg)')
    # compare as JSON: configs may arrive as ConfigDicts with tuples
    cfg = json.loads(json.dumps(model_cfg))
    known = open_clip.get_model_config(model_name)
    if known is not None:
        if known != cfg:
            raise ValueError(f'OpenCLIPBackbone: open_clip already has a different config named '
                             f'{model_name!r}; give this model_cfg another model_name')
        return
    if not model_name or Path(model_name).name != model_name:
        raise ValueError(f'OpenCLIPBackbone: model_name {model_name!r} must be a plain name to register '
                         f'a model_cfg under')
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f'{model_name}.json'
        path.write_text(json.dumps(cfg))
        open_clip.add_model_config(path)


def _head(keys: Sequence[str], n: int = 10) -> str:
    """The first ``n`` keys, for a readable log line."""
    return str(list(keys[:n]))[:-1] + (', ...]' if len(keys) > n else ']')


@MODELS.register_module()
class OpenCLIPBackbone(BaseModule):
    """An open_clip model's vision tower as a pyramid backbone, with its (frozen) text tower.

    Args:
        model_name: open_clip architecture ('RN50', 'convnext_large_d_320', ...) or the name to
            register ``model_cfg`` under. Hub / local-dir schemas are refused: nothing is downloaded.
        model_cfg: an open_clip model config (embed_dim, vision_cfg, text_cfg) registered under
            ``model_name``, e.g. for tiny test models.
        pretrained: LOCAL path of an open_clip CLIP checkpoint (state dict, optionally under
            'state_dict'; .pt/.pth/.bin/.safetensors), loaded into the whole CLIP model. Never a tag.
        freeze: freeze the visual tower (no grads, BN/LN kept in eval mode by ``train()``). The text
            tower is always frozen; the geometry branch / fusion always train.
        out_indices: which of the 4 levels (strides 4, 8, 16, 32) ``forward`` returns.
        geom_branch: ``GeomBranch`` kwargs (``in_channels`` / ``out_strides`` filled in), e.g.
            ``dict(channels=64)``. Needs ``token_fusion``, its only consumer.
        token_fusion: ``TokenFusionModule`` kwargs plus ``level`` (1 = stride 8, 2 = stride 16,
            default 2): that level's semantic tokens query the geometry map of the same stride and
            the result replaces the level. ``sem_channels`` / ``geom_channels`` are filled in.
            Needs ``geom_branch``.
        token_pruner: ``TokenPruner`` kwargs (``embed_dim`` filled in), e.g.
            ``dict(keep_ratio=0.25)``: only the top tokens receive the fusion update. Needs
            ``token_fusion``.
        distill_keys: features ``forward`` also stores in ``self.distill_feats``: 'stage1'..'stage4'
            (CLIP stage outputs), 'geom8' / 'geom16' (geometry maps built), 'fused' (the fused level).
        channels_last: run the visual tower in the channels-last memory layout (oneDNN's native
            layout on CPU, the tensor cores' on GPU): the same values up to float rounding, the
            RN50 trunk ~0.8x the time on CPU (docs/benchmarks/NOTES.md). The pyramid comes out
            channels-last; consumers must not assume contiguous NCHW strides.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 model_name: str,
                 model_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 freeze: bool = True,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 geom_branch: Optional[dict] = None,
                 token_fusion: Optional[dict] = None,
                 token_pruner: Optional[dict] = None,
                 distill_keys: Sequence[str] = (),
                 channels_last: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if parse_model_name(model_name)[0] is not None:
            raise ValueError(f'OpenCLIPBackbone: model_name {model_name!r} uses a hub/local-dir schema; '
                             f'give an open_clip architecture name (weights go in `pretrained`)')
        if not out_indices or not set(out_indices) <= {0, 1, 2, 3}:
            raise ValueError(f'OpenCLIPBackbone: out_indices must be a non-empty subset of (0, 1, 2, 3), '
                             f'got {list(out_indices)}')
        if (geom_branch is None) != (token_fusion is None):
            raise ValueError('OpenCLIPBackbone: geom_branch and token_fusion go together (the fusion '
                             'queries the geometry tokens, and nothing else consumes them)')
        if token_pruner is not None and token_fusion is None:
            raise ValueError('OpenCLIPBackbone: token_pruner restricts token_fusion; set token_fusion too')
        if pretrained is not None:
            # checked before building: a large model takes a while to construct
            if not os.path.isfile(pretrained):
                raise FileNotFoundError(f'OpenCLIPBackbone: pretrained checkpoint {pretrained!r} (config key '
                                        f'`pretrained`) does not exist; it must be a local file')
            if Path(pretrained).suffix in ('.npz', '.npy'):
                raise ValueError(f'OpenCLIPBackbone: {pretrained!r} is a numpy (big_vision) checkpoint, '
                                 f'which open_clip only converts for ViT towers; give a torch state dict')
        if model_cfg is not None:
            register_open_clip_config(model_name, model_cfg)
        clip_cfg = open_clip.get_model_config(model_name)
        if clip_cfg is None:
            raise ValueError(f'OpenCLIPBackbone: unknown open_clip model {model_name!r}; give model_cfg '
                             f'or one of open_clip.list_models()')
        if 'hf_model_name' in clip_cfg['text_cfg']:
            raise ValueError(f'OpenCLIPBackbone: {model_name!r} has a HuggingFace text tower, which '
                             f'open_clip builds from the hub; only open_clip text transformers are supported')

        # Random init only (no tags, no timm/HF base weights): weights come from `pretrained` alone.
        clip = open_clip.create_model(model_name, pretrained=None, pretrained_image=False,
                                      pretrained_text=False)
        if pretrained is not None:
            self._load_pretrained(clip, pretrained)
        stem, stages, channels = self._split_pyramid(model_name, clip.visual)
        # What remains of the CLIP model is the text tower (its encode_text does not touch `visual`).
        del clip.visual
        self.visual = nn.ModuleDict(dict(stem=stem, stages=nn.ModuleList(stages)))
        self.text = clip
        self.text.requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.text_embed_dim = int(clip_cfg['embed_dim'])
        self.stage_channels = channels
        self.out_indices = tuple(out_indices)
        self.out_channels = [channels[i] for i in self.out_indices]
        self.freeze = freeze
        if freeze:
            self.visual.requires_grad_(False)
        # parameter layout survives load_state_dict (it copies into the existing tensors)
        self.channels_last = channels_last
        if channels_last:
            self.visual.to(memory_format=torch.channels_last)

        self.fusion_level: Optional[int] = None
        self.geom_branch = self.token_fusion = self.token_pruner = None
        if token_fusion is not None:
            fusion_cfg = dict(token_fusion)
            self.fusion_level = fusion_cfg.pop('level', 2)
            if self.fusion_level not in (1, 2):
                raise ValueError(f'OpenCLIPBackbone: token_fusion level must be 1 (stride 8) or 2 '
                                 f'(stride 16), the strides of the geometry maps; got {self.fusion_level}')
            self.geom_branch = GeomBranch(
                in_channels=channels[:2], out_strides=(STRIDES[self.fusion_level], ), **geom_branch)
            self.token_fusion = TokenFusionModule(
                sem_channels=channels[self.fusion_level], geom_channels=self.geom_branch.channels,
                **fusion_cfg)
        if token_pruner is not None:
            self.token_pruner = TokenPruner(embed_dim=channels[self.fusion_level], **token_pruner)

        valid_keys = [f'stage{i + 1}' for i in range(4)]
        if self.geom_branch is not None:
            valid_keys += [f'geom{s}' for s in self.geom_branch.out_strides] + ['fused']
        bad = [k for k in distill_keys if k not in valid_keys]
        if bad:
            raise ValueError(f'OpenCLIPBackbone: distill_keys {bad} are not features of this backbone; '
                             f'choose from {valid_keys}')
        self.distill_keys = tuple(distill_keys)
        self.distill_feats: Dict[str, Tensor] = {}
        # Stages past the deepest one anything reads are skipped.
        needed = set(self.out_indices) | {int(k[-1]) - 1 for k in self.distill_keys if k.startswith('stage')}
        if self.fusion_level is not None:
            needed.add(self.fusion_level)
        self.num_stages = max(needed) + 1
        # frozen towers start in eval mode too, not only after the first train() call
        self.train(self.training)

    @staticmethod
    def _load_pretrained(clip: nn.Module, path: str) -> None:
        """Load a full open_clip CLIP checkpoint into ``clip``; report missing / unexpected keys."""
        # weights_only=True: tensors only, no arbitrary unpickling
        incompatible = open_clip.load_checkpoint(clip, path, strict=False, weights_only=True)
        missing, unexpected = incompatible.missing_keys, incompatible.unexpected_keys
        # BN's num_batches_tracked is filled in silently when absent, so it is not evidence of a match
        loaded = [k for k in clip.state_dict() if k not in missing and not k.endswith('num_batches_tracked')]
        if not loaded:
            raise ValueError(f'OpenCLIPBackbone: no key of {path!r} matches the open_clip model '
                             f'(e.g. model key {next(iter(clip.state_dict()))!r}); is it an open_clip '
                             f'CLIP checkpoint of {type(clip.visual).__name__} architecture?')
        print_log(f'OpenCLIPBackbone: loaded {len(loaded)} tensors from {path}; '
                  f'{len(missing)} missing keys {_head(missing)}; '
                  f'{len(unexpected)} unexpected keys {_head(unexpected)}', logger='current')

    @staticmethod
    def _split_pyramid(model_name: str, visual: nn.Module) -> Tuple[nn.Module, List[nn.Module], List[int]]:
        """The stride-4 stem, the 4 stages and their channels of a conv vision tower."""
        if isinstance(visual, ModifiedResNet):
            stem = nn.Sequential(visual.conv1, visual.bn1, visual.act1, visual.conv2, visual.bn2,
                                 visual.act2, visual.conv3, visual.bn3, visual.act3, visual.avgpool)
            stages = [visual.layer1, visual.layer2, visual.layer3, visual.layer4]
            return stem, stages, [layer[-1].bn3.num_features for layer in stages]
        trunk = getattr(visual, 'trunk', None)
        if (isinstance(visual, TimmModel) and hasattr(trunk, 'stem')
                and len(getattr(trunk, 'stages', ())) == 4):
            reductions = tuple(info['reduction'] for info in trunk.feature_info)
            if reductions != STRIDES:
                raise ValueError(f'OpenCLIPBackbone: {model_name!r} stages have strides {reductions}, '
                                 f'expected {STRIDES}')
            return trunk.stem, list(trunk.stages), [info['num_chs'] for info in trunk.feature_info]
        raise ValueError(f'OpenCLIPBackbone: {model_name!r} has a {type(visual).__name__} vision tower '
                         f'without a 4-stage conv pyramid; use a ModifiedResNet (RN50, ...) or timm '
                         f'ConvNeXt (convnext_*) model')

    def __getstate__(self) -> dict:
        # distill_feats holds the last forward's graph tensors: transient, not module state, and
        # deepcopy (EMA, model copies) cannot copy non-leaf tensors.
        state = self.__dict__.copy()
        state['distill_feats'] = {}
        return state

    def train(self, mode: bool = True) -> 'OpenCLIPBackbone':
        super().train(mode)
        # frozen towers keep their BN statistics / dropout off
        self.text.eval()
        if self.freeze:
            self.visual.eval()
        return self

    def reset(self) -> None:
        """Start a new video: forget the token pruner's cached scores (no-op without a pruner)."""
        if self.token_pruner is not None:
            self.token_pruner.reset()

    def get_text_model(self) -> nn.Module:
        """The frozen open_clip text tower (the CLIP model without its visual tower)."""
        return self.text

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        """Embed ``texts`` with the CLIP text tower: [N, text_embed_dim] (unit norm if ``normalize``)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f'OpenCLIPBackbone.encode_text: texts must be a list of str, got {texts!r}')
        device = next(self.text.parameters()).device
        if not texts:
            return torch.zeros(0, self.text_embed_dim, device=device)
        tokens = self.tokenizer(list(texts)).to(device)
        return self.text.encode_text(tokens, normalize=normalize)

    def forward(self, x: Tensor, video: bool = False, use_pruner: bool = True) -> Tuple[Tensor, ...]:
        """Images [B, 3, H, W] (H, W multiples of 32) -> the ``out_indices`` levels of the pyramid.

        ``video``: frames of one video in order (the token pruner may reuse the previous frame's
        scores; call ``reset()`` before each video).
        ``use_pruner``: False fuses every token for this call (the TaskRouter's per-task switch);
        no effect without a ``token_pruner``.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'OpenCLIPBackbone: input must be [B, 3, H, W], got {tuple(x.shape)}')
        if x.shape[-2] % 32 or x.shape[-1] % 32:
            raise ValueError(f'OpenCLIPBackbone: input size {tuple(x.shape[-2:])} must be a multiple of '
                             f'32 (the coarsest stride); pad it (e.g. data preprocessor pad_size_divisor=32)')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            feats = [self.visual.stem(x)]
            for stage in self.visual.stages[:self.num_stages]:
                feats.append(stage(feats[-1]))
        feats = feats[1:]
        store = {f'stage{i + 1}': f for i, f in enumerate(feats)}

        if self.token_fusion is not None:
            geom = self.geom_branch(feats[:2])
            store.update({f'geom{s}': g for s, g in zip(self.geom_branch.out_strides, geom)})
            feats[self.fusion_level] = self.token_fusion(
                feats[self.fusion_level], geom[-1],
                pruner=self.token_pruner if use_pruner else None, video=video)
            store['fused'] = feats[self.fusion_level]
        if self.distill_keys:
            self.distill_feats = {k: store[k] for k in self.distill_keys}
        return tuple(feats[i] for i in self.out_indices)
