"""RapSAM decoder head: shared object/prompt queries over a clip, adaptors, and training targets and
losses."""
import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmdet.models.utils import get_uncertain_point_coords_with_randomness
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.dist import all_reduce
from mmengine.model import BaseModule
from mmengine.structures import InstanceData

from seg.models.utils.feature_products import kernel_masks
from seg.registry import MODELS, TASK_UTILS

from .iou_head import grid_mask_iou
from .prompt_mask_refiner import DensePrompts
from .sam_prompt_encoder import PromptTokens


@dataclass
class StepOutput:
    """Predictions of one decoder step (a stage or an adaptor). Object entries are None when the
    object queries did not run, prompt entries when there were no prompts."""
    obj_cls: Optional[torch.Tensor] = None     # [B, Q, K+1] logits, last = no object
    obj_mask: Optional[torch.Tensor] = None    # [B, Q, T, h, w] logits
    prm_cls: Optional[torch.Tensor] = None     # [N, K+1]
    prm_mask: Optional[torch.Tensor] = None    # [N, T, h, w]
    obj_query: Optional[torch.Tensor] = None   # [B, Q, C]
    prm_query: Optional[torch.Tensor] = None   # [N, C]
    # class embeddings (the CLIP text space ``classify`` compares with the class names)
    obj_cls_embed: Optional[torch.Tensor] = None  # [B, Q, Dt]
    prm_cls_embed: Optional[torch.Tensor] = None  # [N, Dt]
    # predicted IoU (0..1) of each prompt query's thresholded mask with its object, over all frames;
    # set on output steps only (the final step and the prompt exits), with an ``iou_head``
    prm_iou: Optional[torch.Tensor] = None     # [N]
    # multimask output (a ``multimask_decoder``, on output steps decoded with ``multimask=True``):
    # K candidate masks of each prompt query on its prompted frame, and their predicted IoU
    prm_multi_mask: Optional[torch.Tensor] = None  # [N, K, h, w]
    prm_multi_iou: Optional[torch.Tensor] = None   # [N, K]


@dataclass
class HeadOutput:
    steps: List[StepOutput] = field(default_factory=list)  # stages..., then the adaptor output
    # routed prompt exits: depth d -> the prompt output formed after stage d exactly as a decode
    # with ``num_stages=d`` forms its final step (prompt entries only)
    exits: Dict[int, StepOutput] = field(default_factory=dict)

    @property
    def final(self) -> StepOutput:
        return self.steps[-1]


@MODELS.register_module()
class RapSAMVideoHead(BaseModule):
    """Multi-stage dynamic-kernel decoder with object queries (panoptic / video instances) and prompt
    queries (interactive, VOS), classification against CLIP text embeddings of the class names.

    Args:
        num_things_classes / num_stuff_classes: class counts (things first, as in mmdet panoptic).
        num_queries: object queries.
        num_stages: shared decoder stages.
        feat_channels: neck / query channels.
        text_dim: CLIP text-embedding dimension (class names and text prompts).
        attention: None (full softmax) or the config of a low-rank attention (``LowRankMHSA``).
        prompt_encoder / prompt_aggregator: prompts -> tokens -> one query per object.
        panoptic_adaptor / prompt_adaptor: task-specific light stages after the shared ones (None: off).
        memory_reader: FastSAM2 streaming VOS (None: off): the config of the module that conditions
            a tracked object's query on its ``StreamingMemory`` entries (``MemoryCrossAttention``;
            ``embed_dim``, ``memory_dim`` = ``text_dim`` and ``num_heads`` are filled in).
        mask_warp: streaming VOS: the config of the module that moves each tracked object's
            previous mask onto the new frame by local feature correspondence before decoding
            (``LocalMaskWarp``; ``feat_channels`` is filled in), or None (the previous mask as is).
        prompt_refiner: the config of a dense correction of the prompt masks from the raw prompts
            (``PromptMaskRefiner``; ``feat_channels`` is filled in), or None (off): see ``decode``.
        refine_object_masks: whether the detector's ``mask_refiner`` (see ``decode``) also corrects
            the object queries' masks. Off by default: it costs one small conv stack per query and
            mask (+36 GFLOPs for 100 queries at 1024x576 in the R50 config), so it pays only on the
            few prompt queries, whose masks a user looks at one by one.
        multimask_decoder: the config of a ``MultimaskDecoder`` (``feat_channels`` is filled in;
            needs the ``iou_head`` to score its candidates), or None (off): with it, output steps
            decoded with ``multimask=True`` carry ``prm_multi_mask`` / ``prm_multi_iou``.
        iou_head: the config of the mask-quality head (``QueryIoUHead``; ``in_channels`` is filled
            in) predicting ``prm_iou`` from the output prompt queries, or None (off). Its input query
            is not detached (as in SAM): the IoU loss also shapes the decoder's prompt queries, but
            never the mask logits (its target is detached).
        loss_cls / loss_mask / loss_dice: mmdet loss configs; prompt queries reuse mask+dice losses.
        loss_iou: the loss of ``prm_iou`` against the IoU of the thresholded predicted mask with its
            target (``grid_mask_iou``); default MSE with weight 1.0, as SAM.
        loss_dpsr: FastSAM2 DPSR temporal loss on video batches (None: off), e.g.
            ``dict(type='DPSRLoss', lambda_mask=1.0, lambda_feat=1.0)``; see ``loss``.
        train_cfg: ``num_points``, ``oversample_ratio``, ``importance_sample_ratio`` (point-sampled
            mask losses as in Mask2Former), ``assigner`` and ``sampler`` for the object queries.
    """

    def __init__(self,
                 num_things_classes: int = 80,
                 num_stuff_classes: int = 53,
                 num_queries: int = 100,
                 num_stages: int = 3,
                 feat_channels: int = 256,
                 num_heads: int = 8,
                 ffn_channels: int = 1024,
                 text_dim: int = 1024,
                 attention: Optional[dict] = None,
                 prompt_encoder: Optional[dict] = None,
                 prompt_aggregator: Optional[dict] = None,
                 panoptic_adaptor: Optional[dict] = dict(type='QueryAdaptor'),
                 prompt_adaptor: Optional[dict] = dict(type='QueryAdaptor'),
                 memory_reader: Optional[dict] = None,
                 mask_warp: Optional[dict] = None,
                 prompt_refiner: Optional[dict] = None,
                 iou_head: Optional[dict] = dict(type='QueryIoUHead'),
                 multimask_decoder: Optional[dict] = None,
                 refine_object_masks: bool = False,
                 loss_cls: Optional[dict] = None,
                 loss_mask: Optional[dict] = None,
                 loss_dice: Optional[dict] = None,
                 loss_iou: Optional[dict] = None,
                 loss_dpsr: Optional[dict] = None,
                 no_object_weight: float = 0.1,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.num_things_classes, self.num_stuff_classes = num_things_classes, num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes
        self.num_queries, self.num_stages = num_queries, num_stages
        c = feat_channels
        stage_cfg = dict(feat_channels=c, num_heads=num_heads, ffn_channels=ffn_channels,
                         cls_channels=text_dim, attention=attention)
        self.query_feat = nn.Embedding(num_queries, c)
        self.init_mask_proj = nn.Linear(c, c)
        self.stages = nn.ModuleList(
            MODELS.build(dict(type='DynamicQueryStage', **stage_cfg)) for _ in range(num_stages))
        self.panoptic_adaptor = self._build_adaptor(panoptic_adaptor, stage_cfg)
        self.prompt_adaptor = self._build_adaptor(prompt_adaptor, stage_cfg)
        # a config may name another ``type``: the defaults come first, the config overrides them
        self.prompt_encoder = MODELS.build(
            {**dict(type='SAMPromptEncoder', embed_dim=c, text_dim=text_dim), **(prompt_encoder or {})})
        self.prompt_aggregator = MODELS.build(
            {**dict(type='PromptPooling', embed_dim=c, text_dim=text_dim), **(prompt_aggregator or {})})
        self.memory_reader = None if memory_reader is None else MODELS.build(
            {**dict(type='MemoryCrossAttention', embed_dim=c, memory_dim=text_dim,
                    num_heads=num_heads), **memory_reader})
        self.mask_warp = None if mask_warp is None else MODELS.build(
            {**dict(type='LocalMaskWarp', feat_channels=c), **mask_warp})
        self.prompt_refiner = None if prompt_refiner is None else MODELS.build(
            {**dict(type='PromptMaskRefiner', feat_channels=c), **prompt_refiner})
        self.iou_head = None if iou_head is None else MODELS.build(
            {**dict(type='QueryIoUHead', in_channels=c), **iou_head})
        if multimask_decoder is not None and self.iou_head is None:
            raise ValueError('RapSAMVideoHead: multimask_decoder needs an iou_head to score its '
                             'candidate masks')
        self.multimask_decoder = None if multimask_decoder is None else MODELS.build(
            {**dict(type='MultimaskDecoder', feat_channels=c), **multimask_decoder})
        self.refine_object_masks = refine_object_masks
        # Classes are CLIP text embeddings of the class names (filled by the detector, frozen) plus a
        # learnable "no object" embedding; a learnable temperature scales the cosine similarities.
        self.register_buffer('class_text_embeds', torch.zeros(self.num_classes, text_dim))
        self.no_object_embed = nn.Parameter(torch.randn(1, text_dim) * 0.02)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

        class_weight = [1.0] * self.num_classes + [no_object_weight]
        self.loss_cls = MODELS.build(loss_cls or dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0, reduction='mean',
            class_weight=class_weight))
        self.loss_mask = MODELS.build(loss_mask or dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0))
        self.loss_dice = MODELS.build(loss_dice or dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
            naive_dice=True, eps=1.0, loss_weight=5.0))
        self.loss_iou = MODELS.build(loss_iou or dict(type='mmdet.MSELoss', loss_weight=1.0))
        self.loss_dpsr = None if loss_dpsr is None else MODELS.build(loss_dpsr)
        self.class_weight = class_weight
        self.train_cfg = dict(num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75)
        self.train_cfg.update(train_cfg or {})
        self.assigner = TASK_UTILS.build(self.train_cfg.get('assigner', dict(
            type='mmdet.HungarianAssigner',
            match_costs=[dict(type='mmdet.ClassificationCost', weight=2.0),
                         dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                         dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)])))
        self.sampler = TASK_UTILS.build(self.train_cfg.get('sampler', dict(type='mmdet.MaskPseudoSampler')))
        self.test_cfg = test_cfg or {}

    @staticmethod
    def _build_adaptor(cfg: Optional[dict], stage_cfg: dict) -> Optional[nn.Module]:
        return None if cfg is None else MODELS.build({**stage_cfg, **cfg})

    # ------------------------------------------------------------------ classes
    def set_class_embeddings(self, embeds: torch.Tensor) -> None:
        """Set the (frozen) text embeddings of the class names, ``[num_classes, text_dim]``."""
        if embeds.shape != self.class_text_embeds.shape:
            raise ValueError(f'class embeddings must be {tuple(self.class_text_embeds.shape)} '
                             f'(num_classes, text_dim), got {tuple(embeds.shape)}')
        self.class_text_embeds.copy_(embeds.detach())

    def classify(self, cls_embed: torch.Tensor) -> torch.Tensor:
        """Cosine similarity to the class text embeddings and to "no object" -> ``[..., K+1]``."""
        classes = torch.cat([self.class_text_embeds, self.no_object_embed], dim=0)
        sim = F.normalize(cls_embed, dim=-1) @ F.normalize(classes, dim=-1).t()
        return sim * self.logit_scale.clamp(max=math.log(100)).exp()

    # ------------------------------------------------------------------ forward
    def forward(self, feats: torch.Tensor, prompts: Optional[PromptTokens] = None,
                run_objects: bool = True, num_stages: Optional[int] = None,
                mask_refiner: Optional[nn.Module] = None,
                prompt_exits: Sequence[int] = (), multimask: bool = False,
                feat_cache: Optional[Dict[str, torch.Tensor]] = None,
                single_mask: bool = True, classes: bool = True) -> HeadOutput:
        """Decode a batch of clips.

        Args:
            feats: neck features ``[B, C, T, h, w]`` (T = 1 for images).
            prompts: encoded prompts (``SAMPromptEncoder``) or None.
            run_objects: run the object queries (panoptic / video instances).
            num_stages: run only the first stages (TaskRouter); default all.
            mask_refiner: applied to the final mask logits (see ``decode``).
            prompt_exits: routed prompt exits to form as well (see ``decode``).
            multimask: form the multimask candidates on the output steps (see ``decode``).
            feat_cache: see ``decode``.
            single_mask: see ``decode``.
            classes: see ``decode``.
        """
        self._check_feats(feats)
        objects = self.init_object_queries(feats) if run_objects else None
        prm = None
        if prompts is not None and prompts.num_prompts > 0:
            prm = self.init_prompt_queries(prompts, feats)
        return self.decode(feats, objects, prm, num_stages, mask_refiner, prompt_exits,
                           dense_prompts=DensePrompts.from_tokens(prompts) if prm is not None else None,
                           multimask=multimask, feat_cache=feat_cache, single_mask=single_mask,
                           classes=classes)

    def init_object_queries(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The learned object queries ``[B, Q, C]`` and their initial masks ``[B, Q, T, h, w]``."""
        q = self.query_feat.weight[None].expand(feats.shape[0], -1, -1)
        return q, kernel_masks(self.init_mask_proj(q), feats)

    def init_prompt_queries(self, prompts: PromptTokens, feats: torch.Tensor
                            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One query per prompted object, padded per sample: queries ``[B, N_max, C]``, initial
        masks ``[B, N_max, T, h, w]`` (a mask prompt on its frame) and validity ``[B, N_max]``."""
        q, valid = self._pad_prompt_queries(prompts, feats.shape[0])
        m = kernel_masks(self.init_mask_proj(q), feats)
        return q, self._inject_mask_prompts(m, prompts), valid

    def decode(self, feats: torch.Tensor,
               objects: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
               prompts: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None,
               num_stages: Optional[int] = None,
               mask_refiner: Optional[nn.Module] = None,
               prompt_exits: Sequence[int] = (),
               dense_prompts: Optional[DensePrompts] = None,
               multimask: bool = False,
               feat_cache: Optional[Dict[str, torch.Tensor]] = None,
               single_mask: bool = True, classes: bool = True) -> HeadOutput:
        """Run the shared stages, then the task adaptors, on given initial queries.

        The output step (the last one) is formed from the last stage run: the task adaptors (a task
        without one keeps the stage's prediction), then ``mask_refiner``, then the
        ``prompt_refiner`` (with ``dense_prompts``), then the IoU head (and, with ``multimask``, the
        ``multimask_decoder``'s candidates).

        Prompt queries never attend to each other (the stages run them ``isolate``-d): each
        prompted object is decoded independently of the others, in training and inference alike,
        so adding, removing or re-prompting one object leaves every other object's masks
        unchanged. They do not see the object queries either (separate query sets).

        Args:
            feats: ``[B, C, T, h, w]``.
            objects: ``(queries [B, Q, C], mask logits [B, Q, T, h, w])`` or None (not run).
            prompts: ``(queries [B, N, C], mask logits [B, N, T, h, w], valid [B, N])`` or None.
                The streaming VOS path passes memory-conditioned queries and the previous frame's
                masks here (mask propagation).
            num_stages: run only the first stages (TaskRouter); default all.
            mask_refiner: a ``MaskStateRefiner``-like module ``(feat [B', C, h, w], mask logits
                [B', Q, h, w]) -> logits``, applied frame by frame to the final step's prompt
                masks (and object masks with ``refine_object_masks``).
            prompt_exits: depths d (1 <= d < stages run) after which the prompt queries also form
                an output step, exactly as a decode with ``num_stages=d`` forms its final prompt
                predictions (prompt adaptor, refiner, IoU head): ``HeadOutput.exits[d]``, prompt
                entries only. Training supervises them so that every depth the TaskRouter routes
                prompts to is trained. Without prompt queries there are no exits.
            dense_prompts: the raw prompts of the prompt queries, one row per valid query in order
                (``forward`` takes them from its prompt tokens; the streaming tracker passes each
                tracked object's propagated mask as its mask prompt). With a ``prompt_refiner``,
                each row's mask on its ``frame_index`` is corrected from its clicks and mask
                prompt; the other frames of a clip are left as decoded (they have no clicks).
                None: no prompt refinement.
            multimask: with a ``multimask_decoder``, the output steps (final and exits) also carry
                ``prm_multi_mask`` / ``prm_multi_iou``, on each row's prompted frame
                (``dense_prompts.frame_index``; frame 0 without them). Training asks for them.
            feat_cache: a dict the caller keeps for as long as ``feats`` stays the same (an image
                predictor: per ``set_image``) and passes to every decode on them: the refiners'
                projections of ``feats``, which no prompt changes, are computed on the first
                decode and reused by the next ones (a re-prompt then costs only the prompt path).
                None: computed per call.
            single_mask: False when the caller reads only the multimask candidates (SAM2's
                ``multimask_output=True``): with ``multimask`` and a ``multimask_decoder``, the
                single prompt mask, which would be discarded, is not formed: the prompt
                adaptor's mask prediction, the refiners (``mask_refiner``, ``prompt_refiner``)
                and the IoU head's score of the single mask are skipped; the output step's
                ``prm_mask`` (with a prompt adaptor) and ``prm_iou`` are None. The candidates do
                not depend on them (they read the prompt queries).
            classes: False when the caller reads no class of the prompt queries, only the
                multimask candidates (an image predictor's ``predict``): with ``multimask`` and a
                ``multimask_decoder``, the prompts' class embedding and scores are not formed in
                any step (``prm_cls`` / ``prm_cls_embed`` None). Without candidates the single
                mask is the output and its class may score it: formed as usual. The object
                queries are always classified.
        """
        self._check_feats(feats)
        n_stages = self.num_stages if num_stages is None else num_stages
        if not 1 <= n_stages <= self.num_stages:
            raise ValueError(f'num_stages must be in 1..{self.num_stages}, got {n_stages}')
        exits = self._check_exits(prompt_exits, n_stages)
        obj_q, obj_m = objects if objects is not None else (None, None)
        prm_q, prm_m, prm_valid = prompts if prompts is not None else (None, None, None)
        classes = classes or not self._forms_candidates(multimask, prompts)
        out = HeadOutput()
        for depth, stage in enumerate(self.stages[:n_stages], start=1):
            step = StepOutput()
            if obj_q is not None:
                obj_q, obj_m, cls = stage(obj_q, feats, obj_m)
                self._set_objects(step, obj_q, obj_m, cls)
            if prm_q is not None:
                prm_q, prm_m, cls = stage(prm_q, feats, prm_m, prm_valid, isolate=True,
                                          embed_classes=classes)
                self._set_prompts(step, prm_q, prm_m, cls, prm_valid)
                if depth in exits:
                    prompt_only = dataclasses.replace(step, obj_cls=None, obj_mask=None,
                                                      obj_query=None, obj_cls_embed=None)
                    out.exits[depth] = self._output_step(prompt_only, feats, None, None,
                                                         (prm_q, prm_m, prm_valid), mask_refiner,
                                                         dense_prompts, multimask, feat_cache,
                                                         single_mask, classes)
            out.steps.append(step)
        final = self._output_step(out.steps[-1], feats, obj_q, obj_m,
                                  None if prm_q is None else (prm_q, prm_m, prm_valid), mask_refiner,
                                  dense_prompts, multimask, feat_cache, single_mask, classes)
        if self.panoptic_adaptor is not None or self.prompt_adaptor is not None:
            out.steps.append(final)
        else:  # no adaptor step: the last stage is the output
            out.steps[-1] = final
        return out

    def _output_step(self, step: StepOutput, feats: torch.Tensor, obj_q: Optional[torch.Tensor],
                     obj_m: Optional[torch.Tensor],
                     prompts: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                     mask_refiner: Optional[nn.Module],
                     dense_prompts: Optional[DensePrompts] = None,
                     multimask: bool = False,
                     feat_cache: Optional[Dict[str, torch.Tensor]] = None,
                     single_mask: bool = True, classes: bool = True) -> StepOutput:
        """The output formed from a stage's ``step`` and the queries / masks it produced: task
        adaptors (a task without one keeps the stage's prediction), refiners, IoU head. One function
        for the final step and the prompt exits, so an exit is exactly the routed inference output."""
        step = StepOutput(**vars(step))
        prm_valid = None
        candidates = self._forms_candidates(multimask, prompts)
        single = single_mask or not candidates  # form the single prompt mask and its score
        if obj_q is not None and self.panoptic_adaptor is not None:
            self._set_objects(step, *self.panoptic_adaptor(obj_q, feats, obj_m))
        if prompts is not None:
            prm_q, prm_m, prm_valid = prompts
            if self.prompt_adaptor is not None:
                self._set_prompts(step, *self.prompt_adaptor(prm_q, feats, prm_m, prm_valid,
                                                              isolate=True,
                                                              predict_masks=single,
                                                              embed_classes=classes),
                                  prm_valid)
        if mask_refiner is not None:
            step = self._refine(step, feats, mask_refiner, prm_valid, self.refine_object_masks,
                                feat_cache, single)
        if single and self.prompt_refiner is not None and dense_prompts is not None \
                and step.prm_mask is not None:
            step.prm_mask = self._refine_prompts(step.prm_mask, feats, dense_prompts, feat_cache)
        if single and self.iou_head is not None and step.prm_query is not None:
            step.prm_iou = self.iou_head(step.prm_query)
        if candidates:
            self._set_multimask(step, feats, prm_valid, dense_prompts)
        return step

    def _forms_candidates(self, multimask: bool, prompts: Optional[tuple]) -> bool:
        """Whether a decode forms the multimask candidates of its prompt queries."""
        return multimask and self.multimask_decoder is not None and prompts is not None

    def _set_multimask(self, step: StepOutput, feats: torch.Tensor, prm_valid: torch.Tensor,
                       dense_prompts: Optional[DensePrompts]) -> None:
        """The ``multimask_decoder``'s candidates of each prompt query on its prompted frame,
        scored by the IoU head.

        The decoder reads the query and feature DETACHED: it is an add-on for ambiguous clicks
        that must not pull the shared decoder away from the single-mask output every other task
        uses (with the gradient shared, the fed-back-mask gain of the interactive training test
        fell from +0.037 to +0.016 IoU)."""
        if dense_prompts is not None:
            b, t = dense_prompts.batch_index, dense_prompts.frame_index
        else:
            b = prm_valid.nonzero(as_tuple=True)[0]
            t = torch.zeros_like(b)
        cand, masks = self.multimask_decoder(step.prm_query.detach(), _row_frames(feats, b, t).detach())
        step.prm_multi_mask = masks
        step.prm_multi_iou = self.iou_head(cand.flatten(0, 1)).view(cand.shape[:2])

    @staticmethod
    def _check_exits(prompt_exits: Sequence[int], n_stages: int) -> Set[int]:
        if isinstance(prompt_exits, numbers.Integral):
            raise ValueError(f'prompt_exits must be a sequence of stage depths, got the single '
                             f'value {prompt_exits!r} (use [{prompt_exits!r}])')
        exits = list(prompt_exits)
        bad = [d for d in exits if isinstance(d, bool) or not isinstance(d, numbers.Integral)
               or not 1 <= d < n_stages]
        if bad:
            raise ValueError(f'prompt_exits must be stage depths in 1..{n_stages - 1} (before the '
                             f'last of the {n_stages} stages run; that one is the final output), '
                             f'got {bad} in {exits}')
        return {int(d) for d in exits}

    def _set_objects(self, step: StepOutput, q: torch.Tensor, m: torch.Tensor,
                     cls: torch.Tensor) -> None:
        step.obj_query, step.obj_mask, step.obj_cls_embed = q, m, cls
        step.obj_cls = self.classify(cls)

    def _set_prompts(self, step: StepOutput, q: torch.Tensor, m: Optional[torch.Tensor],
                     cls: Optional[torch.Tensor], valid: torch.Tensor) -> None:
        step.prm_query = q[valid]
        step.prm_mask = None if m is None else m[valid]
        step.prm_cls_embed = None if cls is None else cls[valid]
        step.prm_cls = None if cls is None else self.classify(step.prm_cls_embed)

    @staticmethod
    def _refine(step: StepOutput, feats: torch.Tensor, refiner: nn.Module,
                prm_valid: Optional[torch.Tensor], objects: bool,
                feat_cache: Optional[Dict[str, torch.Tensor]] = None,
                prompts: bool = True) -> StepOutput:
        """The step with its prompt (if ``prompts``) and object (if ``objects``) mask logits
        corrected by ``refiner``, frame by frame."""
        b, c, t, h, w = feats.shape
        frame_feats = feats.transpose(1, 2).reshape(b * t, c, h, w)
        projected = _cached(feat_cache, 'mask_refiner', lambda: refiner.project(frame_feats))

        def refine(masks: torch.Tensor) -> torch.Tensor:  # [B, Q, T, h, w]
            q = masks.shape[1]
            per_frame = masks.transpose(1, 2).reshape(b * t, q, h, w)
            return refiner(frame_feats, per_frame, projected).reshape(b, t, q, h, w).transpose(1, 2)

        step = StepOutput(**vars(step))
        if objects and step.obj_mask is not None:
            step.obj_mask = refine(step.obj_mask)
        if prompts and step.prm_mask is not None:
            # back to the padded [B, N_max] layout the features are batched in
            padded = step.prm_mask.new_zeros(*prm_valid.shape, t, h, w)
            padded[prm_valid] = step.prm_mask
            step.prm_mask = refine(padded)[prm_valid]
        return step

    def _refine_prompts(self, masks: torch.Tensor, feats: torch.Tensor, tokens: DensePrompts,
                        feat_cache: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
        """``masks [N, T, h, w]`` with each row's prompted frame corrected by ``prompt_refiner``
        from its frame feature, clicks and mask prompt."""
        if tokens.num_prompts != masks.shape[0]:
            raise ValueError(f'RapSAMVideoHead: dense_prompts has {tokens.num_prompts} rows, the '
                             f'prompt masks {masks.shape[0]}; they must be the same prompts')
        rows = torch.arange(masks.shape[0], device=masks.device)
        b, t = tokens.batch_index, tokens.frame_index
        # the rows read their frame of the projected (narrow) feature, not copies of the wide one
        projected = _cached(feat_cache, 'prompt_refiner', lambda: self.prompt_refiner.project(feats))
        refined = self.prompt_refiner(_row_frames(projected, b, t), masks[rows, t], tokens.mask_logits,
                                      tokens.mask_valid, tokens.point_coords, tokens.point_labels,
                                      tokens.propagated, projected=True)
        # under autocast the refiner's output may differ from the decoder's mask dtype
        return masks.index_put((rows, t), refined.to(masks.dtype))

    @staticmethod
    def _check_feats(feats: torch.Tensor) -> None:
        if feats.dim() != 5:
            raise ValueError(f'RapSAMVideoHead expects features [B, C, T, h, w], got {tuple(feats.shape)}')

    def read_memory(self, query: torch.Tensor, embeds: torch.Tensor, valid: torch.Tensor,
                    age: torch.Tensor) -> torch.Tensor:
        """Condition tracked objects' queries ``[K, C]`` on their memory entries ``embeds
        [K, M, Dt]`` (``valid [K, M]``, ``age [K, M]`` frames before the current one)."""
        if self.memory_reader is None:
            raise RuntimeError('RapSAMVideoHead: streaming VOS needs memory_reader=dict(...) in the '
                               'head config')
        return self.memory_reader(query, embeds, valid, age)

    def _pad_prompt_queries(self, prompts: PromptTokens, batch_size: int) -> tuple:
        """Aggregate each object's tokens into a query and lay them out as ``[B, N_max, C]``."""
        q = self.prompt_aggregator(prompts.point_embed, prompts.point_valid, prompts.box_embed,
                                   prompts.box_valid, prompts.mask_embed, prompts.mask_valid,
                                   prompts.text_embed, prompts.text_valid)
        if batch_size == 1:  # every row is sample 0's, in order: no layout to compute
            return q[None], torch.ones(q.shape[:1], dtype=torch.bool, device=q.device)[None]
        counts = torch.bincount(prompts.batch_index, minlength=batch_size)
        n_max = int(counts.max())
        # slot of each prompt inside its sample (prompts are grouped by sample, in order)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(q.shape[0], device=q.device) - starts[prompts.batch_index]
        padded = q.new_zeros(batch_size, n_max, q.shape[-1])
        padded[prompts.batch_index, slot] = q
        valid = torch.zeros(batch_size, n_max, dtype=torch.bool, device=q.device)
        valid[prompts.batch_index, slot] = True
        return padded, valid

    @staticmethod
    def _inject_mask_prompts(mask_logits: torch.Tensor, prompts: PromptTokens) -> torch.Tensor:
        """Where an object has a mask prompt, its initial mask on the prompted frame is that mask."""
        if not prompts.mask_valid.any():
            return mask_logits
        b_idx, t_idx = prompts.batch_index, prompts.frame_index
        counts = torch.bincount(b_idx, minlength=mask_logits.shape[0])
        slot = torch.arange(b_idx.shape[0], device=b_idx.device) - (torch.cumsum(counts, 0) - counts)[b_idx]
        rows = prompts.mask_valid.nonzero(as_tuple=True)[0]
        mask_logits = mask_logits.clone()
        mask_logits[b_idx[rows], slot[rows], t_idx[rows]] = prompts.mask_logits[rows].to(mask_logits.dtype)
        return mask_logits

    # ------------------------------------------------------------------ targets
    def preprocess_gt(self, frames: List[List[DetDataSample]], input_hw: Tuple[int, int],
                      device: torch.device) -> Tuple[List[InstanceData], List[List[torch.Tensor]]]:
        """The ground truth of a batch (per sample, its frames) -> the ``targets`` of ``loss`` and,
        per sample and frame, the target row of each of that frame's segments (``prompt_targets``
        maps the prompts' ``gt_ids`` through it).

        A sample's targets are ``masks [N, T, H, W]`` (bool, the padded input size ``input_hw``)
        and ``labels [N]``. Images: thing instances in ``gt_instances`` order, then one segment
        per stuff label of ``gt_sem_seg`` in ascending label order (the order ``GeneratePrompts``
        indexes ``gt_ids`` in; 255 is void). Clips: one row per ``instances_ids`` value, in order
        of first appearance.
        """
        targets, row_maps = [], []
        for clip in frames:
            tgt, maps = self._image_targets(clip[0], device) if len(clip) == 1 else \
                _clip_targets(clip, device)
            if tgt.masks.shape[-2:] != input_hw:
                raise ValueError(
                    f'ground-truth masks {tuple(tgt.masks.shape[-2:])} do not match the batch input '
                    f'{tuple(input_hw)}: set pad_mask=True and pad_seg=True in the data '
                    'preprocessor')
            targets.append(tgt)
            row_maps.append(maps)
        return targets, row_maps

    def _image_targets(self, sample: DetDataSample, device: torch.device
                       ) -> Tuple[InstanceData, List[torch.Tensor]]:
        gt = sample.gt_instances
        labels, masks = [gt.labels.to(device)], [_mask_tensor(gt.masks, device)]
        if 'gt_sem_seg' in sample and self.num_stuff_classes > 0:
            sem = sample.gt_sem_seg.sem_seg[0].to(device)
            stuff = torch.unique(sem).sort().values
            stuff = stuff[(stuff >= self.num_things_classes) & (stuff < self.num_classes)]
            labels.append(stuff.long())
            masks.append(sem[None] == stuff[:, None, None])
        labels, masks = torch.cat(labels), torch.cat(masks)
        return (InstanceData(labels=labels, masks=masks[:, None]),
                [torch.arange(len(labels), device=device)])

    @staticmethod
    def prompt_targets(gt_ids: torch.Tensor, row_map: torch.Tensor, sample: DetDataSample
                       ) -> torch.Tensor:
        """The target row (of ``preprocess_gt``'s targets) of each prompt row of frame ``sample``:
        its segment ``gt_ids`` (-1: drawn from none) through that frame's ``row_map``; -1 for none."""
        gt_ids = gt_ids.to(row_map.device)
        if (gt_ids >= len(row_map)).any():
            raise ValueError(f'prompt gt_ids {gt_ids.tolist()} of {sample.metainfo.get("img_path")} '
                             f'point past the {len(row_map)} ground-truth segments of that frame')
        mapped = torch.full_like(gt_ids, -1)
        ok = gt_ids >= 0
        mapped[ok] = row_map[gt_ids[ok]]
        return mapped

    # ------------------------------------------------------------------ losses
    def loss(self, out: HeadOutput, targets: List[InstanceData],
             prompt_targets: Optional[torch.Tensor] = None,
             prompts: Optional[PromptTokens] = None,
             feats: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Deeply supervised losses over every decoder step (the last one unprefixed), and the
        prompt losses of every routed exit (``exit{d}.loss_prompt_*``; no object losses there).

        Prompt losses: ``loss_prompt_cls`` / ``_mask`` / ``_dice``, and ``loss_prompt_iou`` on a
        step that carries ``prm_iou`` (output steps with an ``iou_head``): ``loss_iou`` of the
        predicted IoU against ``grid_mask_iou`` of the step's masks with their targets (detached).
        On a step with multimask candidates (``prm_multi_mask``), SAM's ambiguity rule:
        ``loss_prompt_multimask`` is, for each prompt that is a single click (one point, nothing
        else: the ambiguous case), the mask + Dice loss of its best candidate only (the minimum
        over the K candidates, against the target on the prompted frame); the other prompts use
        the single-mask output alone. ``loss_prompt_multimask_iou`` supervises the predicted IoU
        of every candidate of every prompt with a target.

        With ``loss_dpsr`` and clips (T > 1), the final step adds ``loss_dpsr_mask`` /
        ``loss_dpsr_feat``: for every pair of consecutive frames of a tracked object (a prompt with
        a target, or an object query matched to an instance) present in both frames, the current
        mask against the previous one (detached) and the object's current frame embedding against
        the previous one. The frame embedding of an object is the neck feature pooled under its
        (soft) mask on that frame, the same pooling the decoder stages use.

        Args:
            out: ``forward`` output.
            targets: per sample, ``labels`` [N] and ``masks`` [N, T, H, W] (padded input size), as
                ``preprocess_gt`` builds them from the data samples.
            prompt_targets: [N_prompts] row of the sample's ``targets`` each prompt must segment
                (-1: no target, the prompt is skipped; ``prompt_targets``).
            prompts: the encoded prompts (for their sample index).
            feats: the neck features ``[B, C, T, h, w]`` decoded; needed by DPSR on clips.
        """
        losses: Dict[str, torch.Tensor] = {}
        matches = None
        for k, step in enumerate(out.steps):
            last = k == len(out.steps) - 1
            prefix = '' if last else f'd{k}.'
            if step.obj_cls is not None:
                cls_l, mask_l, dice_l, assigned = self._object_loss(step.obj_cls, step.obj_mask, targets)
                losses.update({f'{prefix}loss_cls': cls_l, f'{prefix}loss_mask': mask_l,
                               f'{prefix}loss_dice': dice_l})
                if last:
                    matches = assigned
            if step.prm_mask is not None and prompt_targets is not None:
                losses.update({prefix + k: v for k, v in
                               self._prompt_loss(step, targets, prompt_targets, prompts).items()})
        if prompt_targets is not None:
            for depth, step in sorted(out.exits.items()):
                losses.update({f'exit{depth}.{k}': v for k, v in
                               self._prompt_loss(step, targets, prompt_targets, prompts).items()})
        final = out.final
        mask = final.obj_mask if final.obj_mask is not None else final.prm_mask
        if self.loss_dpsr is not None and mask is not None and mask.shape[-3] > 1:
            if feats is None:
                raise ValueError('RapSAMVideoHead.loss: DPSR on clips needs the neck features '
                                 '(feats=[B, C, T, h, w])')
            losses.update(self._dpsr_loss(final, matches, targets, prompt_targets, prompts, feats))
        return losses

    def _dpsr_loss(self, step: StepOutput, matches: Optional[list], targets: List[InstanceData],
                   prompt_targets: Optional[torch.Tensor], prompts: Optional[PromptTokens],
                   feats: torch.Tensor) -> Dict[str, torch.Tensor]:
        """DPSR over consecutive frames of every tracked object (see ``loss``)."""
        masks, embeds, present = [], [], []
        if matches is not None:
            for b, (pos, pos_gt) in enumerate(matches):
                m = step.obj_mask[b, pos]
                masks.append(m)
                embeds.append(self.frame_embeddings(m, feats[b]))
                present.append(_present(targets[b].masks[pos_gt]))
        if step.prm_mask is not None and prompt_targets is not None:
            for b in range(len(targets)):
                rows = ((prompts.batch_index == b) & (prompt_targets >= 0)).nonzero(as_tuple=True)[0]
                m = step.prm_mask[rows]
                masks.append(m)
                embeds.append(self.frame_embeddings(m, feats[b]))
                present.append(_present(targets[b].masks[prompt_targets[rows]]))
        if not masks:  # prompt queries without targets: nothing is tracked with supervision
            return {}
        masks, embeds, present = torch.cat(masks), torch.cat(embeds), torch.cat(present)
        # pairs (t - 1, t): an object counts where it is present in both frames
        return self.loss_dpsr(masks[:, :-1].flatten(0, 1), masks[:, 1:].flatten(0, 1),
                              embeds[:, :-1].flatten(0, 1), embeds[:, 1:].flatten(0, 1),
                              valid=(present[:, :-1] & present[:, 1:]).flatten())

    @staticmethod
    def frame_embeddings(mask_logits: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        """Per-frame object embeddings ``[N, T, C]``: ``feat [C, T, h, w]`` pooled under the soft
        masks ``[N, T, h, w]`` (normalised like the decoder stages' pooling)."""
        weights = mask_logits.sigmoid()
        pooled = torch.einsum('nthw,cthw->ntc', weights, feat)
        return pooled / (weights.flatten(2).sum(-1, keepdim=True) + 1.0)

    def _object_loss(self, cls_scores: torch.Tensor, mask_preds: torch.Tensor,
                     targets: List[InstanceData]) -> tuple:
        """Class / mask / Dice losses of the object queries, and per sample the Hungarian matches
        ``(query indices, target rows)``."""
        labels, mask_targets, matched_preds, matches = [], [], [], []
        for cls_i, mask_i, gt in zip(cls_scores, mask_preds, targets):
            lab, pos, pos_gt = self._assign(cls_i, mask_i, gt)
            labels.append(lab)
            matched_preds.append(mask_i[pos])
            mask_targets.append(gt.masks[pos_gt])
            matches.append((pos, pos_gt))
        labels = torch.stack(labels)
        class_weight = cls_scores.new_tensor(self.class_weight)
        loss_cls = self.loss_cls(cls_scores.flatten(0, 1), labels.flatten(),
                                 avg_factor=class_weight[labels.flatten()].sum())
        loss_mask, loss_dice = self._mask_losses(torch.cat(matched_preds), torch.cat(mask_targets))
        return loss_cls, loss_mask, loss_dice, matches

    def _assign(self, cls_score: torch.Tensor, mask_pred: torch.Tensor, gt: InstanceData) -> tuple:
        """Hungarian matching of one clip's queries to its instances on shared random points."""
        num_q = cls_score.shape[0]
        labels = cls_score.new_full((num_q, ), self.num_classes, dtype=torch.long)
        if len(gt) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=cls_score.device)
            return labels, empty, empty
        t = mask_pred.shape[1]
        with torch.no_grad():
            coords = torch.rand(1, t, self.train_cfg['num_points'] // t, 2, device=cls_score.device)
            pred_pts = sample_clip_points(mask_pred, coords.expand(num_q, -1, -1, -1))
            gt_pts = sample_clip_points(gt.masks.float(), coords.expand(len(gt), -1, -1, -1))
            assign = self.assigner.assign(
                pred_instances=InstanceData(scores=cls_score, masks=pred_pts),
                gt_instances=InstanceData(labels=gt.labels, masks=gt_pts))
            sampling = self.sampler.sample(
                assign_result=assign, pred_instances=InstanceData(scores=cls_score, masks=mask_pred),
                gt_instances=gt)
        pos, pos_gt = sampling.pos_inds, sampling.pos_assigned_gt_inds
        labels[pos] = gt.labels[pos_gt]
        return labels, pos, pos_gt

    def _prompt_loss(self, step: StepOutput, targets: List[InstanceData], prompt_targets: torch.Tensor,
                     prompts: PromptTokens) -> Dict[str, torch.Tensor]:
        """``loss_prompt_{cls,mask,dice}`` (and ``loss_prompt_iou`` where the step has ``prm_iou``)
        of the prompts with a target."""
        keep = prompt_targets >= 0
        if not keep.any():
            zero = step.prm_mask.sum() * 0
            losses = dict(loss_prompt_cls=zero, loss_prompt_mask=zero, loss_prompt_dice=zero)
            if step.prm_iou is not None:
                losses['loss_prompt_iou'] = step.prm_iou.sum() * 0
            if step.prm_multi_mask is not None:
                losses.update(loss_prompt_multimask=step.prm_multi_mask.sum() * 0,
                              loss_prompt_multimask_iou=step.prm_multi_iou.sum() * 0)
            return losses
        b_idx, rows = prompts.batch_index[keep], prompt_targets[keep]
        mask_t = torch.stack([targets[b].masks[r] for b, r in zip(b_idx.tolist(), rows.tolist())])
        label_t = torch.stack([targets[b].labels[r] for b, r in zip(b_idx.tolist(), rows.tolist())])
        # a prompted object always exists: no "no object" class, plain CE over the real classes
        loss_cls = F.cross_entropy(step.prm_cls[keep][:, :self.num_classes], label_t) \
            * self.loss_cls.loss_weight
        loss_mask, loss_dice = self._mask_losses(step.prm_mask[keep], mask_t)
        losses = dict(loss_prompt_cls=loss_cls, loss_prompt_mask=loss_mask, loss_prompt_dice=loss_dice)
        if step.prm_iou is not None:
            losses['loss_prompt_iou'] = self.loss_iou(step.prm_iou[keep],
                                                      grid_mask_iou(step.prm_mask[keep], mask_t))
        if step.prm_multi_mask is not None:
            frame_t = mask_t[torch.arange(len(mask_t), device=mask_t.device),
                             prompts.frame_index[keep]]
            single = ((prompts.point_valid.sum(1) == 1) & ~prompts.box_valid & ~prompts.mask_valid
                      & ~prompts.text_valid)[keep]
            losses.update(self._multimask_loss(step.prm_multi_mask[keep], step.prm_multi_iou[keep],
                                               frame_t, single))
        return losses

    def _multimask_loss(self, cands: torch.Tensor, iou: torch.Tensor, target: torch.Tensor,
                        single: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The ambiguity-rule losses (see ``loss``) of candidates ``[M, K, h, w]`` with predicted
        IoU ``[M, K]`` against targets ``[M, H, W]``; ``single`` [M]: the rows that are one click."""
        m, k = cands.shape[:2]
        flat = cands.flatten(0, 1)[:, None]  # [M*K, 1, h, w]
        tgt = target[:, None].expand(-1, k, -1, -1).flatten(0, 1)[:, None].float()
        with torch.no_grad():
            coords = get_uncertain_point_coords_with_randomness(
                flat, None, self.train_cfg['num_points'], self.train_cfg['oversample_ratio'],
                self.train_cfg['importance_sample_ratio'])
            tgt_pts = point_sample(tgt, coords, align_corners=False)[:, 0]
        pred_pts = point_sample(flat, coords, align_corners=False)[:, 0]  # [M*K, P]
        per_cand = (self.loss_mask(pred_pts, tgt_pts, reduction_override='none').mean(1)
                    + self.loss_dice(pred_pts, tgt_pts, reduction_override='none')).view(m, k)
        # only the best candidate of an ambiguous (single-click) prompt is trained
        weight = single.to(per_cand.dtype)
        loss = (per_cand.min(1).values * weight).sum() / weight.sum().clamp(min=1.0)
        iou_t = grid_mask_iou(flat, tgt)
        return dict(loss_prompt_multimask=loss,
                    loss_prompt_multimask_iou=self.loss_iou(iou.flatten(), iou_t))

    def _mask_losses(self, preds: torch.Tensor, gts: torch.Tensor) -> tuple:
        """Point-sampled (importance sampling, Mask2Former-style) BCE + Dice for matched masks
        ``[N, T, h, w]`` vs ``[N, T, H, W]``."""
        num = preds.new_tensor(float(len(preds)))
        all_reduce(num, op='mean')
        num = num.clamp(min=1.0)
        if len(preds) == 0:
            zero = preds.sum() * 0
            return zero, zero
        n, t = preds.shape[:2]
        p = self.train_cfg['num_points']
        with torch.no_grad():
            coords = get_uncertain_point_coords_with_randomness(
                preds.flatten(0, 1)[:, None], None, max(p // t, 1),
                self.train_cfg['oversample_ratio'], self.train_cfg['importance_sample_ratio'])
            coords = coords.reshape(n, t, -1, 2)
            tgt = sample_clip_points(gts.float(), coords)
        pred = sample_clip_points(preds, coords)
        loss_dice = self.loss_dice(pred, tgt, avg_factor=num)
        loss_mask = self.loss_mask(pred.reshape(-1), tgt.reshape(-1), avg_factor=num * pred.shape[1])
        return loss_mask, loss_dice


def _clip_targets(clip: List[DetDataSample], device: torch.device
                  ) -> Tuple[InstanceData, List[torch.Tensor]]:
    """A clip's targets and row maps (see ``RapSAMVideoHead.preprocess_gt``)."""
    ids, labels = [], []
    for f in clip:
        if 'instances_ids' not in f.gt_instances:
            raise KeyError(f'video frame {f.metainfo.get("img_path")} has no '
                           'gt_instances.instances_ids: clips need per-object ids')
        for i, lab in zip(f.gt_instances.instances_ids.tolist(), f.gt_instances.labels.tolist()):
            if i not in ids:
                ids.append(i)
                labels.append(lab)
    h, w = clip[0].batch_input_shape
    masks = torch.zeros(len(ids), len(clip), h, w, dtype=torch.bool, device=device)
    row_maps = []
    for t, f in enumerate(clip):
        rows = torch.tensor([ids.index(i) for i in f.gt_instances.instances_ids.tolist()],
                            dtype=torch.long, device=device)
        if len(rows):
            masks[rows, t] = _mask_tensor(f.gt_instances.masks, device)
        row_maps.append(rows)
    return InstanceData(labels=torch.tensor(labels, dtype=torch.long, device=device),
                        masks=masks), row_maps


def _mask_tensor(masks, device: torch.device) -> torch.Tensor:
    if isinstance(masks, BitmapMasks):
        return masks.to_tensor(dtype=torch.bool, device=device)
    return torch.as_tensor(masks, device=device).bool()


def sample_clip_points(masks: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Sample ``masks`` [N, T, H, W] at normalised ``coords`` [N, T, P, 2] (per frame) -> [N, T*P]."""
    n, t = masks.shape[:2]
    vals = point_sample(masks.flatten(0, 1)[:, None], coords.flatten(0, 1), align_corners=False)
    return vals.reshape(n, t * coords.shape[2])


def _present(masks: torch.Tensor) -> torch.Tensor:
    """Target masks ``[N, T, H, W]`` -> bool ``[N, T]``: the object is visible on the frame."""
    return masks.flatten(2).any(-1)


def _row_frames(feats: torch.Tensor, batch_index: torch.Tensor, frame_index: torch.Tensor
                ) -> torch.Tensor:
    """``feats [B, C, T, h, w]`` -> each row's frame ``[N, C, h, w]``. A single image (B = T = 1,
    every re-prompt and tracked frame) is a broadcast view: advanced indexing would copy the
    frame's whole feature once per row (3 ms for one 256 x 72 x 128 frame on a CPU)."""
    if feats.shape[0] == 1 and feats.shape[2] == 1:
        # the row count as a size, not len(): an ONNX trace keeps it dynamic
        return feats[:, :, 0].expand(batch_index.shape[0], -1, -1, -1)
    return feats[batch_index, :, frame_index]


def _cached(cache: Optional[Dict[str, torch.Tensor]], key: str,
            compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``cache[key]``, computed and stored first if missing (no cache: computed)."""
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]
