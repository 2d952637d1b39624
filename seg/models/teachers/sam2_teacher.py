"""Frozen SAM2 teacher for online distillation: image features, and masks for the student's prompts."""
import logging
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from hydra.errors import MissingConfigException
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from sam2.build_sam import build_sam2
from torch import Tensor, nn

from seg.registry import MODELS
from seg.structures.prompts import PADDING, POSITIVE

# SAM2's input normalisation: ImageNet statistics applied to RGB in 0..1.
SAM2_MEAN = (0.485, 0.456, 0.406)
SAM2_STD = (0.229, 0.224, 0.225)
# SAM2's prompt encoder codes a box as two corner points with these labels.
BOX_CORNER_LABELS = (2, 3)
# A 0..1 mask prompt becomes logits 20 * p - 10 (0 -> -10, 0.5 -> 0, 1 -> +10): the same +-10 logits
# SAM2 gives binary mask inputs it turns into logits (SAM2Base._use_mask_as_output).
MASK_PROMPT_SCALE, MASK_PROMPT_BIAS = 20.0, -10.0
# SAM2's image predictor clamps the low-res logits it returns to this range.
LOGIT_CLAMP = 32.0
# Prompt rows per mask-decoder call: each row holds its own copy of the image embedding and
# upsampled mask features (~12 MB at image_size 1024), so large prompt sets are decoded in chunks.
DECODER_ROWS = 32
AUTOCAST_DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}

# Hydra overrides of the SAM2 Hiera configs (same keys in sam2/ and sam2.1/) for a tiny random
# teacher: 8-d Hiera with 5 blocks, 32-d FPN / decoder width, one small memory layer (unused here,
# but SAM2 always builds it). With image_size=128 it runs a batch of 2 in ~0.05 s on one CPU thread.
TINY_SAM2_OVERRIDES = (
    '++model.image_encoder.trunk.embed_dim=8',
    '++model.image_encoder.trunk.stages=[1,1,2,1]',
    '++model.image_encoder.trunk.global_att_blocks=[3]',
    '++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]',
    '++model.image_encoder.neck.d_model=32',
    '++model.image_encoder.neck.position_encoding.num_pos_feats=32',
    '++model.memory_attention.d_model=32',
    '++model.memory_attention.num_layers=1',
    '++model.memory_attention.layer.d_model=32',
    '++model.memory_attention.layer.dim_feedforward=32',
    '++model.memory_attention.layer.self_attention.embedding_dim=32',
    '++model.memory_attention.layer.cross_attention.embedding_dim=32',
    '++model.memory_encoder.in_dim=32',
    '++model.memory_encoder.mask_downsampler.embed_dim=32',
    '++model.memory_encoder.fuser.layer.dim=32',
)


@dataclass
class TeacherOutput:
    """What the teacher returns for a batch of N images with R prompt rows in total.

    feats: per requested level, ``[N, C_l, h_l, w_l]`` on the teacher's square grid (the whole
        ``H x W`` input stretched to ``image_size x image_size``).
    mask_logits: ``[R, h_m, w_m]`` one mask per prompt row (image 0's rows, then image 1's, ...),
        over the ``H x W`` input; None when no prompts were given.
    iou_pred: ``[R]`` SAM2's predicted IoU of each mask.
    valid: ``[R]`` bool, False for rows SAM2 cannot answer (text-only prompts); their logits and
        IoU are zero.
    """
    feats: List[Tensor]
    mask_logits: Optional[Tensor] = None
    iou_pred: Optional[Tensor] = None
    valid: Optional[Tensor] = None


@MODELS.register_module()
class SAM2Teacher(nn.Module):
    """A frozen SAM2 (the installed ``sam2`` package) answering the student's prompts.

    Images: the student's padded batch ``[N, 3, H, W]``, RGB 0..255, not normalised. Each is
    stretched to ``image_size x image_size`` (SAM2's own square resize, bilinear with antialiasing)
    and normalised with SAM2's ImageNet mean/std. Because the whole ``H x W`` input is stretched,
    every teacher map aligns with the student's maps by a plain resize.

    Features: ``feature_levels`` index SAM2's FPN (``backbone_fpn``; 0/1/2 = stride 4/8/16) exactly
    as its mask decoder receives them: levels 0 and 1 after the decoder's high-resolution
    projections (``conv_s0``/``conv_s1``, 32 and 64 channels in the released models) when the model
    uses high-res features, and the stride-16 image embedding with ``no_mem_embed`` added, as
    SAM2's image predictor prepares it for a single image.

    Prompts (project format, ``seg.structures.prompts``), per row:
      - points and box corners are scaled from ``H x W`` to the square; the box goes in as two
        corner points labelled 2/3 ahead of the clicks (as SAM2's predictor encodes boxes);
        padding (-1) stays padding. Token columns that are padding in every row of a call are
        dropped, so a lone prompt is encoded exactly as SAM2's own predictor encodes it;
      - a mask prompt (``masks`` row with a non-zero area; 0..1) is resized over the whole input to
        SAM2's mask-input grid (``image_size / 4``) and mapped to logits ``20 * p - 10``
        (:data:`MASK_PROMPT_SCALE`/:data:`MASK_PROMPT_BIAS`);
      - a single positive click and nothing else is ambiguous: SAM2 decodes its three candidate
        masks and the one with the highest predicted IoU is kept (as SAM2 itself does for a first
        click on a video frame); every other prompt is decoded with ``multimask_output=False``
        (with the dynamic fallback to the best candidate for unstable masks that ``build_sam2``
        turns on for inference);
      - a row with no point, box or mask (text only; SAM2 has no text encoder) gets
        ``valid=False`` and zero logits: the distillation loss must skip it.
    Rows are decoded per image (its features shared by its rows, as in SAM2's image predictor), at
    most :data:`DECODER_ROWS` per call. The logits are the decoder's, not gated by SAM2's
    object-score head (as SAM2's image predictor returns them), clamped to +-32. The 256x256
    (``image_size / 4``) low-res logits cover the square, i.e. the whole ``H x W`` input; they are
    resized to ``mask_size`` (the student's mask grid) when given.

    Video: clips are answered frame by frame through the image path, so no frame index is needed:
    the detector flattens a clip's frames into the batch and passes prompts only on the frames that
    carry them (masks exist only for those frames). SAM2's memory path is not used: it costs a
    memory encoder and memory attention per object per frame and serialises the frames, and the
    student's memory is already trained by the ground truth and the DPSR loss; the teacher's job is
    per-frame features and per-prompt masks.

    Frozen: parameters never require gradients, the module stays in eval mode whatever
    ``train()`` is called with, and ``forward`` runs under ``torch.no_grad()``.

    Args:
        config: SAM2 hydra config name inside the ``sam2`` package.
        checkpoint: local SAM2 checkpoint (``{'model': state_dict}`` as SAM2 releases them).
        allow_random_init: build with random weights when ``checkpoint`` is None (tests, toy
            quickstart only; a loud warning is logged).
        random_init_seed: the seed of those random weights (None: the global generator's
            state). Seeded, a random teacher is the same teacher whatever was built before it: a
            change to the student's modules does not silently swap the target it distils.
        image_size: SAM2's square input size (a multiple of 32; 1024 for the released models;
            smaller sizes make tiny teachers, see :data:`TINY_SAM2_OVERRIDES`).
        overrides: extra hydra overrides for the SAM2 config.
        feature_levels: ``backbone_fpn`` levels returned in ``TeacherOutput.feats``.
        dtype: autocast dtype, 'fp32' (off), 'fp16' or 'bf16'; outputs are fp32 either way. The
            half dtypes are for GPUs: on a CPU both run (torch >= 2.x autocasts fp16 on CPU too) but,
            without native bf16/fp16 units, several times slower than fp32 (hiera_t at 1024, one
            thread: 9.6 s fp32, 68 s bf16).
        device: where SAM2 runs (e.g. its own GPU); None follows the images' device at each call.
            Outputs are returned on the images' device.
    """

    def __init__(self,
                 config: str = 'configs/sam2.1/sam2.1_hiera_t.yaml',
                 checkpoint: Optional[str] = None,
                 allow_random_init: bool = False,
                 random_init_seed: Optional[int] = 0,
                 image_size: int = 1024,
                 overrides: Sequence[str] = (),
                 feature_levels: Sequence[int] = (0, 1, 2),
                 dtype: str = 'fp32',
                 device: Optional[str] = None) -> None:
        super().__init__()
        if dtype not in AUTOCAST_DTYPES:
            raise ValueError(f'SAM2Teacher: dtype must be one of {list(AUTOCAST_DTYPES)}, got {dtype!r}')
        if image_size <= 0 or image_size % 32:
            raise ValueError(f'SAM2Teacher: image_size must be a positive multiple of 32 (the Hiera '
                             f'trunk and the mask decoder downsample by 32), got {image_size}')
        if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
            raise ValueError(f'SAM2Teacher: overrides must be a list of hydra override strings, got '
                             f'{overrides!r} (a config that lazily imports a constant dumps it as its '
                             f'name: write the list itself)')
        if checkpoint is None and not allow_random_init:
            raise ValueError('SAM2Teacher: no checkpoint given; set `model.teacher.checkpoint` '
                             '(--teacher-checkpoint) to a local SAM2 checkpoint, or allow_random_init=True '
                             'for tests and the toy quickstart')
        # checked before building: the real models take a while to construct
        if checkpoint is not None and not os.path.isfile(checkpoint):
            raise FileNotFoundError(f'SAM2Teacher: checkpoint {checkpoint!r} (config key '
                                    f'`model.teacher.checkpoint`, --teacher-checkpoint) does not exist; '
                                    f'it must be a local file')
        if checkpoint is None and random_init_seed is not None:
            with torch.random.fork_rng(devices=[]):  # leaves the caller's random stream as it was
                torch.manual_seed(random_init_seed)
                self.sam = self._build_sam2(config, image_size, overrides)
        else:
            self.sam = self._build_sam2(config, image_size, overrides)
        if checkpoint is not None:
            self._load_checkpoint(checkpoint)
        else:
            print_log(f'SAM2Teacher: {config} has RANDOM weights (allow_random_init=True): its features '
                      f'and masks are noise; fine for tests and the toy quickstart only, real '
                      f'distillation needs a SAM2 checkpoint (--teacher-checkpoint)',
                      logger='current', level=logging.WARNING)
        self.image_size = image_size
        self.dtype = dtype
        num_levels = len(self.sam.image_encoder.trunk.channel_list) - self.sam.image_encoder.scalp
        bad = [lvl for lvl in feature_levels if not 0 <= lvl < num_levels]
        if bad or not feature_levels:
            raise ValueError(f'SAM2Teacher: feature_levels must be a non-empty subset of '
                             f'0..{num_levels - 1} (the FPN levels of {config}), got {list(feature_levels)}')
        self.feature_levels = tuple(feature_levels)
        self.register_buffer('mean', torch.tensor(SAM2_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer('std', torch.tensor(SAM2_STD).view(1, 3, 1, 1) * 255, persistent=False)
        self.device = None
        if device is not None:
            self.to(device)
            self.device = self.mean.device  # resolved ('cuda' -> 'cuda:0'), compared in forward
        self.requires_grad_(False)
        self.train(False)

    @staticmethod
    def _build_sam2(config: str, image_size: int, overrides: Sequence[str]) -> nn.Module:
        try:
            # built on the CPU; forward moves it where the teacher runs
            return build_sam2(config, ckpt_path=None, device='cpu', mode='eval',
                              hydra_overrides_extra=[f'++model.image_size={image_size}', *overrides])
        except MissingConfigException as e:
            raise FileNotFoundError(f'SAM2Teacher: config {config!r} is not a config of the installed sam2 '
                                    f'package (e.g. configs/sam2.1/sam2.1_hiera_t.yaml)') from e

    def _load_checkpoint(self, path: str) -> None:
        # weights_only=True: tensors only, no arbitrary unpickling
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
        if not isinstance(ckpt, dict) or 'model' not in ckpt:
            raise ValueError(f'SAM2Teacher: {path!r} is not a SAM2 checkpoint (a dict with the state '
                             f'dict under "model")')
        incompatible = self.sam.load_state_dict(ckpt['model'], strict=False)
        if incompatible.missing_keys or incompatible.unexpected_keys:
            raise ValueError(f'SAM2Teacher: {path!r} does not match the SAM2 config: '
                             f'{len(incompatible.missing_keys)} missing keys '
                             f'{incompatible.missing_keys[:5]}, {len(incompatible.unexpected_keys)} '
                             f'unexpected keys {incompatible.unexpected_keys[:5]}')
        print_log(f'SAM2Teacher: loaded {path}', logger='current')

    def train(self, mode: bool = True) -> 'SAM2Teacher':
        """The teacher is frozen: it stays in eval mode whatever ``mode`` is."""
        return super().train(False)

    @property
    def feature_channels(self) -> List[int]:
        """Channels of each returned level."""
        decoder = self.sam.sam_mask_decoder
        width = self.sam.hidden_dim
        projected = {0: decoder.conv_s0.out_channels, 1: decoder.conv_s1.out_channels} \
            if self.sam.use_high_res_features_in_sam else {}
        return [projected.get(lvl, width) for lvl in self.feature_levels]

    @property
    def feature_strides(self) -> List[int]:
        """Stride of each returned level w.r.t. the teacher's ``image_size`` input."""
        trunk = self.sam.image_encoder.trunk
        stem = trunk.patch_embed.proj.stride[0]
        return [stem * trunk.q_stride[0] ** lvl for lvl in self.feature_levels]

    @torch.no_grad()
    def forward(self,
                images: Tensor,
                prompts: Optional[Sequence[Optional[InstanceData]]] = None,
                mask_size: Optional[Tuple[int, int]] = None) -> TeacherOutput:
        """Features of ``images`` ``[N, 3, H, W]`` (RGB 0..255) and masks for ``prompts`` (one entry
        per image, None or an ``InstanceData`` in the project's prompt format, coordinates in the
        ``H x W`` frame); ``mask_size`` ``(h, w)`` resizes the masks (default SAM2's low-res grid)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'SAM2Teacher: images must be [N, 3, H, W], got {tuple(images.shape)}')
        if prompts is not None and len(prompts) != len(images):
            raise ValueError(f'SAM2Teacher: {len(prompts)} prompt entries for {len(images)} images')
        out_device = images.device
        device = self.device if self.device is not None else out_device
        if self.mean.device != device:
            self.to(device)
        autocast_dtype = AUTOCAST_DTYPES[self.dtype]
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            fpn = self._encode(images.to(device))
            feats = [fpn[lvl].float().to(out_device) for lvl in self.feature_levels]
            if prompts is None:
                return TeacherOutput(feats)
            logits, iou, valid = self._decode(fpn, prompts, images.shape[-2:])
        if mask_size is not None:
            logits = F.interpolate(logits[:, None], size=tuple(mask_size), mode='bilinear',
                                   align_corners=False)[:, 0]
        return TeacherOutput(feats, logits.to(out_device), iou.to(out_device), valid.to(out_device))

    def _encode(self, images: Tensor) -> List[Tensor]:
        """SAM2's FPN levels as its mask decoder sees them, for the images stretched to the square."""
        x = F.interpolate(images.float(), size=(self.image_size, self.image_size), mode='bilinear',
                          align_corners=False, antialias=True)
        # forward_image applies the decoder's high-res projections to levels 0 and 1 when used
        fpn = list(self.sam.forward_image((x - self.mean) / self.std)['backbone_fpn'])
        if self.sam.directly_add_no_mem_embed:
            fpn[-1] = fpn[-1] + self.sam.no_mem_embed.view(1, -1, 1, 1)
        return fpn

    def _decode(self, fpn: List[Tensor], prompts: Sequence[Optional[InstanceData]],
                input_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tensor]:
        """Low-res mask logits ``[R, s, s]``, IoU ``[R]`` and validity ``[R]`` for every prompt row."""
        device = fpn[-1].device
        rows = self._gather_prompts(prompts, input_hw, device)
        grid = self.sam.sam_prompt_encoder.mask_input_size
        n_rows = len(rows['image'])
        logits = torch.zeros(n_rows, *grid, device=device)
        iou = torch.zeros(n_rows, device=device)
        labels = rows['labels']
        n_pos = (labels == POSITIVE).sum(1)
        n_given = (labels != PADDING).sum(1)
        has_mask = rows['mask_valid']
        valid = (n_given > 0) | has_mask
        # a lone positive click is ambiguous: decode SAM2's candidates and keep the best-scored one
        single_click = (n_pos == 1) & (n_given == 1) & ~has_mask
        # Decoder calls: per image (its features are shared, not copied per row, as in SAM2's
        # predictor), per prompt mode (a prompt-encoder call takes a mask for all rows or none; the
        # lone clicks decode 3 candidates), and at most DECODER_ROWS rows (bounds the memory).
        for i in rows['image'].unique().tolist():
            for use_mask, multimask in ((True, False), (False, True), (False, False)):
                sel = valid & (rows['image'] == i) & (has_mask == use_mask) & (single_click == multimask)
                if not sel.any():
                    continue
                for idx in sel.nonzero(as_tuple=True)[0].split(DECODER_ROWS):
                    logits[idx], iou[idx] = self._decode_rows(
                        [lvl[i:i + 1] for lvl in fpn], rows['coords'][idx], labels[idx],
                        rows['masks'][idx] if use_mask else None, multimask)
        return logits, iou, valid

    def _gather_prompts(self, prompts: Sequence[Optional[InstanceData]], input_hw: Tuple[int, int],
                        device: torch.device) -> dict:
        """All prompt rows of the batch as SAM2 inputs on the square: ``coords`` ``[R, 2 + P, 2]``
        (box corners, then clicks) with ``labels`` ``[R, 2 + P]``, ``masks`` ``[R, 1, s, s]`` logits
        with ``mask_valid`` ``[R]``, and the ``image`` index of each row."""
        h, w = input_hw
        scale = torch.tensor([self.image_size / w, self.image_size / h], device=device)
        grid = self.sam.sam_prompt_encoder.mask_input_size
        entries = [(i, p) for i, p in enumerate(prompts) if p is not None and len(p) > 0]
        p_max = max((p.points.shape[1] for _, p in entries), default=0)
        coords, labels, masks, mask_valid, image = [], [], [], [], []
        for i, p in entries:
            n = len(p)
            box_valid = p.box_valid.to(device).bool()
            corner_labels = torch.tensor(BOX_CORNER_LABELS, device=device).expand(n, 2)
            lab = torch.cat([torch.where(box_valid[:, None], corner_labels, PADDING),
                             F.pad(p.point_labels.to(device).long(), (0, p_max - p.points.shape[1]),
                                   value=PADDING)], dim=1)
            xy = torch.cat([p.bboxes.to(device).float().reshape(n, 2, 2),
                            F.pad(p.points.to(device).float(), (0, 0, 0, p_max - p.points.shape[1]))],
                           dim=1) * scale
            coords.append(torch.where(lab[..., None] == PADDING, 0.0, xy))
            labels.append(lab)
            if 'masks' in p:
                m = p.masks.to(device).float()
                if m.shape[-2:] != (h, w):
                    raise ValueError(f'SAM2Teacher: mask prompts of image {i} are '
                                     f'{tuple(m.shape[-2:])}, the input is {(h, w)}')
                area = m.flatten(1).sum(1)
                m = F.interpolate(m[:, None], size=grid, mode='bilinear', align_corners=False,
                                  antialias=True)
                masks.append(m * MASK_PROMPT_SCALE + MASK_PROMPT_BIAS)
                mask_valid.append(area > 0)
            else:
                masks.append(torch.zeros(n, 1, *grid, device=device))
                mask_valid.append(torch.zeros(n, dtype=torch.bool, device=device))
            image.append(torch.full((n, ), i, dtype=torch.long, device=device))
        if not entries:
            return dict(coords=torch.zeros(0, 2, 2, device=device),
                        labels=torch.zeros(0, 2, dtype=torch.long, device=device),
                        masks=torch.zeros(0, 1, *grid, device=device),
                        mask_valid=torch.zeros(0, dtype=torch.bool, device=device),
                        image=torch.zeros(0, dtype=torch.long, device=device))
        return dict(coords=torch.cat(coords), labels=torch.cat(labels), masks=torch.cat(masks),
                    mask_valid=torch.cat(mask_valid), image=torch.cat(image))

    def _decode_rows(self, fpn: List[Tensor], coords: Tensor, labels: Tensor, masks: Optional[Tensor],
                     multimask: bool) -> Tuple[Tensor, Tensor]:
        """One prompt-encoder + mask-decoder call for rows of one image (``fpn`` levels ``[1, ...]``)
        that share the mask / multimask mode."""
        # token columns that are padding in every row would only add no-op tokens
        keep = (labels != PADDING).any(0)
        encoder = self.sam.sam_prompt_encoder
        sparse, dense = encoder(points=(coords[:, keep], labels[:, keep].int()), boxes=None, masks=masks)
        low_res, iou, _, _ = self.sam.sam_mask_decoder(
            image_embeddings=fpn[-1], image_pe=encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=multimask, repeat_image=True,
            high_res_features=fpn[-3:-1] if self.sam.use_high_res_features_in_sam else None)
        best = iou.argmax(1)  # the only candidate without multimask
        rows = torch.arange(len(coords), device=coords.device)
        return (low_res[rows, best].float().clamp(-LOGIT_CLAMP, LOGIT_CLAMP),
                iou[rows, best].float())
