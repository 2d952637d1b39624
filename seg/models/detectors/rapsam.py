"""RapSAM: one model for panoptic, interactive (points / boxes / masks / texts) and video segmentation,
with the FastSAM2 switches (TaskRouter, streaming-memory VOS, mask refiner) off by default."""
import copy
import dataclasses
from typing import Dict, Hashable, List, Optional, Sequence, Set, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.data_preprocessors import TrackDataPreprocessor
from mmdet.models.detectors import BaseDetector
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import mask2bbox
from mmengine.structures import InstanceData
from torch import nn

from seg.registry import MODELS

from ..heads.rapsam_head import HeadOutput, StepOutput
from ..heads.sam_prompt_encoder import PromptTokens
from ..utils.corrective_clicks import CorrectiveClicks
from ..utils.mask_geometry import image_region, to_output_res
from ..utils.memory_adapter import StreamingMemory
from ..utils.task_router import MODES, RouteDecision
from .streaming_tracker import StreamingTracker

SampleList = List[Union[DetDataSample, TrackDataSample]]
CLASS_TEMPLATES = ('a photo of a {}.', 'a photo of the {}.', 'a photo of a small {}.',
                   'a photo of a large {}.')
# mask logits of a tracked object on the frames of a training clip before its prompt
ABSENT_LOGIT = -20.0
# the default SAM-style iterative interaction of training (``train_cfg.interactive_rounds``)
INTERACTIVE_ROUNDS = dict(max_rounds=3, prob=0.5)


@dataclasses.dataclass
class PromptGroup:
    """The prompts given on one frame of one sample of a batch (``batch`` / ``frame`` indices)."""
    batch: int
    frame: int
    prompts: InstanceData


class _Unregistered:
    """Holds a module without making it a submodule of its owner: it stays out of the owner's
    ``state_dict``, ``parameters()`` (optimizer, DDP), ``.to()`` and ``.train()``; a deepcopy of
    the owner (EMA) shares it instead of copying it."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __deepcopy__(self, memo: dict) -> '_Unregistered':
        return self


@MODELS.register_module()
class RapSAM(BaseDetector):
    """Backbone -> YOSO neck -> RapSAM head, for images ``[B, 3, H, W]`` (``DetDataSample``) and clips
    ``[B, T, 3, H, W]`` (``TrackDataSample``).

    A sample whose frames carry ``prompts`` is decoded by its prompt queries (interactive / VOS),
    one query per prompt row, on whichever frame it was given; otherwise the object queries give
    panoptic (images) or per-clip instance (video) results. Training runs both: Hungarian-matched
    object queries and prompt queries supervised by the instance each prompt was drawn from.

    FastSAM2 switches (all None = the RapSAM baseline):

    - ``task_router``: a ``TaskRouter`` consulted once per inference forward (``predict``,
      ``_forward``, ``track_step``) with the mode, the prompt types present and the number of
      frames; its ``RouteDecision`` sets the decoder stages run, the active query set (prompt /
      object / both), the backbone's token pruner on/off and the streaming-memory path. Without a
      router an inference forward runs every stage, the query sets its inputs need and the
      pruner, and streams when the mode is ``'vos'`` and a memory is configured. Training runs
      every stage and query set, and supervises every depth the router can send prompts to: the
      prompt exits (``prompt_exits``: the routed depths of the modes using prompt queries, below
      the head's depth) are decoded and lost too, and clips streamed through the memory run the
      ``'vos'`` depth.
    - ``mode``: ``'auto'`` infers it per forward: every sample prompted -> ``'vos'`` for clips,
      ``'interactive'`` for images; otherwise ``'panoptic'``. Or fix one of the router's modes.
      May be changed on the built model (``model.mode = 'vos'``).
    - ``memory``: a ``StreamingMemory`` config; turns on the streaming VOS path (``new_tracker`` /
      ``track_step``: the video's state lives in the caller's ``StreamingTracker``, as in
      ``seg.apis.FastSAM2VideoPredictor``; and clips routed to the memory in ``predict``) and, in
      training on clips, decodes the prompt queries frame by frame through it (see
      ``StreamingTracker``; the head needs a ``memory_reader``). A fresh memory serves each video.
    - ``mask_refiner``: a ``MaskStateRefiner`` config applied to the final mask logits with the
      neck feature (identity at initialisation).
    - ``regional_features``: a ``RegionalFeatures`` config (needs ``memory``): on tracked frames
      without new prompts the encoder runs only on a crop around the objects' latest masks and
      the rest of the feature map is the video's last full computation (``track_step``).
    - ``teacher`` + ``distill`` (together): online distillation. ``teacher`` is a frozen teacher
      config (``SAM2Teacher``), built but not registered as a submodule (outside the state dict,
      the optimizer, DDP and ``.to()``; it follows the student's device itself); ``distill`` a
      ``SAM2DistillLoss`` config (its projections train with the model). ``loss`` de-normalises
      the batch input to 0..255 RGB (the data preprocessor's mean / std; its channel order from
      ``bgr_to_rgb``: without it the batch is in the loader's BGR order), runs the teacher once
      on every frame with the final prompts of every prompted frame (after the interactive
      rounds, mask prompts included) and adds ``feature_loss`` (the backbone's ``distill_feats``
      plus ``'neck'``, frames flattened) and ``mask_loss`` (the student's mask logits of each
      prompt row on its frame against the teacher's).

    Prompts on several frames of a clip: every prompted frame's rows are prompt queries given on
    that frame. Non-streaming, each row is a query of its own (``predict`` reports one instance
    per object id, the latest prompt of an object winning). Streaming (training with a memory,
    and ``predict`` / ``track_step`` routed to it), a prompt adds an object or re-prompts a
    tracked one: in training an object is the ground-truth row its prompts were drawn from.

    Streaming output: ``pred_instances`` per frame (``masks``, ``mask_logits``, ``scores``,
    ``labels``, ``instances_id``) with one row per tracked object. Object ids come from the optional
    ``prompts.obj_ids`` field (long [N]), else from the prompted frame's
    ``gt_instances.instances_ids[prompts.gt_ids]`` (the DAVIS ids), else the next free ints from 1;
    a prompt with a tracked id re-prompts that object. Prompt instances' ``scores`` are the head's
    predicted IoU (``prm_iou``) when it has an IoU head, else the top class probability.

    ``train_cfg`` keys:

    - ``interactive_rounds`` (default ``dict(max_rounds=3, prob=0.5)``; None: off): SAM-style
      iterative interaction. Each prompted frame of a batch, with probability ``prob``, first goes
      through k ~ U{1..max_rounds} correction rounds without gradient, on the detached neck
      feature of its frame and the prompt queries alone at the depth the router gives
      ``'interactive'`` (as the click evaluation decodes): every object drawn from a ground-truth
      segment and without a mask prompt of its own gets one corrective click
      (``CorrectiveClicks``: the click evaluation's rule on the mask grid) and, as mask prompt, the
      previous prediction (``logits > 0`` at input resolution, what ``ModelClickPredictor`` feeds
      back). The training forward then decodes the corrected prompts.

    Args:
        class_names: names of the things then stuff classes; their CLIP text embeddings are the
            classifier weights (computed once, on first use, with the frozen text tower).
        teacher / distill: see above; one without the other is an error.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 panoptic_head: dict,
                 class_names: Sequence[str],
                 panoptic_fusion_head: Optional[dict] = None,
                 task_router: Optional[dict] = None,
                 mode: str = 'auto',
                 memory: Optional[dict] = None,
                 mask_refiner: Optional[dict] = None,
                 regional_features: Optional[dict] = None,
                 teacher: Optional[dict] = None,
                 distill: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.panoptic_head = MODELS.build(panoptic_head)
        head = self.panoptic_head
        if len(class_names) != head.num_classes:
            raise ValueError(f'{len(class_names)} class_names given but the head has '
                             f'{head.num_classes} classes ({head.num_things_classes} things + '
                             f'{head.num_stuff_classes} stuff)')
        self.class_names = list(class_names)
        self.test_cfg = dict(test_cfg or {})
        self.train_cfg = dict(train_cfg or {})
        self.interactive_rounds = self._check_rounds(
            self.train_cfg.get('interactive_rounds', INTERACTIVE_ROUNDS))
        # instance results take the top (query, class) pairs: there are only num_queries * num_classes
        candidates = head.num_queries * head.num_classes
        if self.test_cfg.get('max_per_image', 100) > candidates:
            self.test_cfg['max_per_image'] = candidates
        fusion = dict(type='SelectiveFusionHead', num_things_classes=head.num_things_classes,
                      num_stuff_classes=head.num_stuff_classes, test_cfg=self.test_cfg)
        fusion.update(panoptic_fusion_head or {})
        self.panoptic_fusion_head = MODELS.build(fusion)
        self._class_embeds_ready = False

        self.task_router = None if task_router is None else MODELS.build(task_router)
        # training depths: the prompt exits, the streamed clips' depth, the correction rounds' depth
        self.prompt_exits: Tuple[int, ...] = ()
        self._stream_stages = self._interactive_stages = None
        if self.task_router is not None:
            rules = self.task_router.rules
            too_deep = {m: r['num_stages'] for m, r in rules.items()
                        if r['num_stages'] > head.num_stages}
            if too_deep:
                raise ValueError(f'task_router rules ask for more decoder stages than the head has '
                                 f'({head.num_stages}): {too_deep}')
            self.prompt_exits = tuple(sorted(
                {r['num_stages'] for r in rules.values()
                 if {r['query_set'], r['unprompted_query_set']} & {'prompt', 'both'}}
                - {head.num_stages}))
            self._stream_stages = rules['vos']['num_stages']
            self._interactive_stages = rules['interactive']['num_stages']
        self.mode = mode
        self._check_mode(mode)
        self.memory_cfg = copy.deepcopy(memory)
        if memory is not None:
            self._new_memory()  # a bad memory config fails at build time
            if head.memory_reader is None:
                raise ValueError('memory= needs the head to read it: set panoptic_head.memory_reader '
                                 "(e.g. dict(type='MemoryCrossAttention'))")
        self.mask_refiner = None if mask_refiner is None else MODELS.build(mask_refiner)
        if regional_features is not None and memory is None:
            raise ValueError('regional_features= computes tracked frames around their objects: it '
                             'needs the streaming path (memory=...)')
        self.regional_features = None if regional_features is None else MODELS.build(
            regional_features)
        self.distill_loss, self._teacher = self._build_distillation(teacher, distill)
        # the batch is RGB only when the preprocessor converted the loader's BGR images
        pre = data_preprocessor
        self._rgb_inputs = bool(pre.get('bgr_to_rgb', False)) if isinstance(pre, dict) else \
            bool(getattr(self.data_preprocessor, '_channel_conversion', False))
        self.last_decision: Optional[RouteDecision] = None  # of the last inference forward

    @staticmethod
    def _check_rounds(cfg: Optional[dict]) -> Optional[dict]:
        if cfg is None:
            return None
        unknown = set(cfg) - set(INTERACTIVE_ROUNDS)
        if unknown:
            raise ValueError(f'RapSAM: train_cfg.interactive_rounds has unknown key(s) '
                             f'{sorted(unknown)}; allowed: {sorted(INTERACTIVE_ROUNDS)}')
        cfg = {**INTERACTIVE_ROUNDS, **cfg}
        if not isinstance(cfg['max_rounds'], int) or cfg['max_rounds'] < 1:
            raise ValueError(f'RapSAM: train_cfg.interactive_rounds.max_rounds must be an int >= 1, '
                             f'got {cfg["max_rounds"]!r}')
        if not 0 <= cfg['prob'] <= 1:
            raise ValueError(f'RapSAM: train_cfg.interactive_rounds.prob must be in [0, 1], got '
                             f'{cfg["prob"]!r}')
        return cfg

    def _build_distillation(self, teacher: Optional[dict], distill: Optional[dict]
                            ) -> Tuple[Optional[nn.Module], Optional[_Unregistered]]:
        """The distillation loss (a submodule: its projections train) and the teacher (held
        outside the module tree), checked against the student's features."""
        if (teacher is None) != (distill is None):
            raise ValueError('RapSAM: teacher= and distill= go together (the teacher is only run '
                             'to be distilled, and distillation needs a teacher); got only '
                             f'{"teacher" if teacher is not None else "distill"}')
        if teacher is None:
            return None, None
        loss = MODELS.build(distill)
        available = {'neck', *getattr(self.backbone, 'distill_keys', ())}
        unknown = sorted({p['student'] for p in loss.pairs} - available)
        if unknown:
            raise ValueError(f'RapSAM: distill pairs name student feature(s) {unknown} that the '
                             f'model does not store; available: {sorted(available)} (add backbone '
                             f"features to backbone.distill_keys)")
        channels = {'neck': getattr(self.neck, 'hidden_dim', None),
                    **{f'stage{i + 1}': c
                       for i, c in enumerate(getattr(self.backbone, 'stage_channels', ()))}}
        for p in loss.pairs:
            if channels.get(p['student']) not in (None, p['student_channels']):
                raise ValueError(f'RapSAM: distill pair {p}: student feature {p["student"]!r} has '
                                 f'{channels[p["student"]]} channels, not {p["student_channels"]}')
        built = MODELS.build(teacher)
        levels = list(built.feature_channels)
        for p in loss.pairs:
            if p['teacher'] >= len(levels) or levels[p['teacher']] != p['teacher_channels']:
                raise ValueError(f'RapSAM: distill pair {p} does not match the teacher\'s feature '
                                 f'levels (channels {levels})')
        return loss, _Unregistered(built)

    @property
    def teacher(self) -> Optional[nn.Module]:
        """The distillation teacher (not a submodule: see the class docstring), or None."""
        return None if self._teacher is None else self._teacher.module

    # ------------------------------------------------------------------ features
    def extract_feat(self, inputs: torch.Tensor, video: bool = False,
                     use_pruner: bool = True) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` -> neck feature ``[N, C, H/4, W/4]``.

        ``video`` (frames of one stream, in order) and ``use_pruner`` reach a backbone with a
        token pruner (``OpenCLIPBackbone``): cached scores across frames, pruning on/off.
        """
        if self._has_pruner():
            return self.neck(self.backbone(inputs, video=video, use_pruner=use_pruner))
        return self.neck(self.backbone(inputs))

    def _has_pruner(self) -> bool:
        return getattr(self.backbone, 'token_pruner', None) is not None

    def _clip_feats(self, inputs: torch.Tensor, video: bool = False,
                    use_pruner: bool = True) -> torch.Tensor:
        """``[B, 3, H, W]`` or ``[B, T, 3, H, W]`` -> ``[B, C, T, h, w]``."""
        if inputs.dim() == 4:
            return self.extract_feat(inputs, video, use_pruner)[:, :, None]
        if inputs.dim() != 5:
            raise ValueError(f'inputs must be [B, 3, H, W] or [B, T, 3, H, W], got {tuple(inputs.shape)}')
        b, t = inputs.shape[:2]
        feat = self.extract_feat(inputs.flatten(0, 1), video, use_pruner)
        return feat.reshape(b, t, *feat.shape[1:]).transpose(1, 2)

    def _ensure_class_embeds(self) -> None:
        """Classifier weights = mean CLIP text embedding of the templated class names (frozen).

        Computed once per (text tower, class names) and kept on disk (``text_embed_cache``):
        later builds load them. ``seg.apis.build_model`` calls this at build time; a checkpoint
        carrying ``class_text_embeds`` skips it (see ``_load_from_state_dict``)."""
        if self._class_embeds_ready:
            return
        from ..utils.text_embed_cache import cached_class_embeddings

        def compute() -> torch.Tensor:
            with torch.no_grad():
                return torch.stack([
                    F.normalize(self.backbone.encode_text([t.format(name) for t in CLASS_TEMPLATES]),
                                dim=-1).mean(0) for name in self.class_names])

        embeds = cached_class_embeddings(getattr(self.backbone, 'text', self.backbone),
                                         type(self.backbone).__name__, self.class_names,
                                         CLASS_TEMPLATES, compute)
        self.panoptic_head.set_class_embeddings(embeds)
        self._class_embeds_ready = True

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # the checkpoint carries the class embeddings it was trained with: keep them. This hook
        # (not load_state_dict) also runs under mmengine's load_checkpoint, which loads module by
        # module
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        self._class_embeds_ready = f'{prefix}panoptic_head.class_text_embeds' in state_dict

    # ------------------------------------------------------------------ sample handling
    @staticmethod
    def _frames(samples: SampleList) -> List[List[DetDataSample]]:
        return [list(s.video_data_samples) if isinstance(s, TrackDataSample) else [s] for s in samples]

    @staticmethod
    def _prompt_groups(frames: List[List[DetDataSample]]) -> List[PromptGroup]:
        """Every prompted frame of the batch, in (sample, frame) order."""
        return [PromptGroup(b, t, f.prompts) for b, clip in enumerate(frames)
                for t, f in enumerate(clip) if _has_prompts(f)]

    def _text_embeds(self, groups: List[PromptGroup]) -> List[Optional[torch.Tensor]]:
        """Per group, the frozen text tower's embedding of each row's text (None: no text)."""
        out = []
        for g in groups:
            p = g.prompts
            if 'texts' in p and any(p.texts):
                with torch.no_grad():
                    out.append(self.backbone.encode_text([s or ' ' for s in p.texts]))
            else:
                out.append(None)
        return out

    def _encode_prompts(self, groups: List[PromptGroup], feats: torch.Tensor,
                        input_hw: Tuple[int, int],
                        texts: Optional[List[Optional[torch.Tensor]]] = None
                        ) -> Optional[PromptTokens]:
        """Prompt groups -> tokens, rows in group order, ``batch_index`` / ``frame_index`` = the
        group's sample and frame (None without groups).

        Each group is encoded on its own frame's feature of ``feats [B, C, T, h, w]``."""
        if not groups:
            return None
        if len(groups) == 1:  # a view: no copy of a frame-sized feature
            g = groups[0]
            frame_feats = feats[g.batch:g.batch + 1, :, g.frame:g.frame + 1]
        else:
            frame_feats = torch.stack([feats[g.batch, :, g.frame] for g in groups])[:, :, None]
        tokens = self._encode_frame_prompts([g.prompts for g in groups], frame_feats, input_hw,
                                            self._text_embeds(groups) if texts is None else texts)
        group = tokens.batch_index
        return dataclasses.replace(
            tokens, batch_index=tokens.batch_index.new_tensor([g.batch for g in groups])[group],
            frame_index=tokens.frame_index.new_tensor([g.frame for g in groups])[group])

    def _encode_frame_prompts(self, prompts: List[InstanceData], frame_feats: torch.Tensor,
                              input_hw: Tuple[int, int], texts: List[Optional[torch.Tensor]]
                              ) -> PromptTokens:
        """One prompt set per frame feature ``[G, C, 1, h, w]`` -> tokens (``batch_index`` = its
        frame's index in ``frame_feats``)."""
        return self.panoptic_head.prompt_encoder(prompts, [0] * len(prompts), frame_feats,
                                                 input_hw, texts)

    # ------------------------------------------------------------------ routing
    def _check_mode(self, mode: str) -> None:
        known = ('auto', *(self.task_router.rules if self.task_router is not None else MODES))
        if mode not in known:
            raise ValueError(f'RapSAM: unknown mode {mode!r}; choose from {list(known)}')

    def _route(self, frames: Optional[List[List[DetDataSample]]], batch_size: int, num_frames: int,
               mode: Optional[str] = None) -> RouteDecision:
        """The one routing decision of an inference forward (``frames`` None: no prompts)."""
        self._check_mode(self.mode)
        prompted = [False] * batch_size
        types: Set[str] = set()
        if frames is not None:
            prompted = [any(_has_prompts(f) for f in clip) for clip in frames]
            for clip in frames:
                for f in clip:
                    if _has_prompts(f):
                        types |= prompt_types(f.prompts)
        if mode is None:
            mode = self.mode
            if mode == 'auto':
                mode = ('panoptic' if not all(prompted)
                        else 'vos' if num_frames > 1 else 'interactive')
        if self.task_router is not None:
            decision = self.task_router.route(mode, types, num_frames)
        else:
            query_set = ('prompt' if all(prompted) else 'both' if any(prompted) else 'object')
            decision = RouteDecision(num_stages=self.panoptic_head.num_stages, query_set=query_set,
                                     use_memory=self.memory_cfg is not None and mode == 'vos',
                                     use_pruner=True)
        if decision.use_memory and self.memory_cfg is None:
            raise ValueError(f'RapSAM: mode {mode!r} routes to the streaming memory but the model has '
                             f"no memory=dict(type='StreamingMemory', ...)")
        self.last_decision = decision
        return decision

    def _new_memory(self) -> StreamingMemory:
        return MODELS.build(copy.deepcopy(self.memory_cfg))

    # ------------------------------------------------------------------ train
    def loss(self, batch_inputs: torch.Tensor, batch_data_samples: SampleList) -> Dict[str, torch.Tensor]:
        self._ensure_class_embeds()
        feats = self._clip_feats(batch_inputs)
        student_feats = None
        if self.distill_loss is not None:
            student_feats = {**self.backbone.distill_feats, 'neck': _frames_first(feats)}
        frames = self._frames(batch_data_samples)
        input_hw = tuple(batch_inputs.shape[-2:])
        head = self.panoptic_head
        targets, row_maps = head.preprocess_gt(frames, input_hw, feats.device)
        groups = self._prompt_groups(frames)
        group_targets = [head.prompt_targets(g.prompts.gt_ids, row_maps[g.batch][g.frame],
                                             frames[g.batch][g.frame]) for g in groups]
        texts = self._text_embeds(groups)
        groups = self._interactive_rounds(feats.detach(), groups, group_targets, targets, frames,
                                          input_hw, texts)
        tokens = self._encode_prompts(groups, feats, input_hw, texts)
        stream = self.memory_cfg is not None and feats.shape[2] > 1 and tokens is not None
        out = head(feats, None if stream else tokens, run_objects=True,
                   mask_refiner=self.mask_refiner, prompt_exits=self.prompt_exits, multimask=True)
        prompt_targets, row_logits = None, None
        if stream:
            objects, prompt_targets, row_objects = self._stream_prompt_queries(
                out, feats, batch_inputs, groups, group_targets, tokens)
            row_logits = out.final.prm_mask[row_objects, tokens.frame_index]
            tokens = objects
        elif tokens is not None:
            prompt_targets = torch.cat(group_targets)
            row_logits = out.final.prm_mask[torch.arange(len(prompt_targets), device=feats.device),
                                            tokens.frame_index]
        losses = head.loss(out, targets, prompt_targets, tokens, feats=feats)
        if self.distill_loss is not None:
            losses.update(self._distill_losses(batch_inputs, groups, student_feats, row_logits))
        return losses

    def _interactive_rounds(self, feats: torch.Tensor, groups: List[PromptGroup],
                            group_targets: List[torch.Tensor], targets: List[InstanceData],
                            frames: List[List[DetDataSample]], input_hw: Tuple[int, int],
                            texts: List[Optional[torch.Tensor]]) -> List[PromptGroup]:
        """SAM-style correction rounds (``train_cfg.interactive_rounds``, see the class
        docstring) on the detached ``feats``; returns the groups with their corrected prompts."""
        cfg = self.interactive_rounds
        if cfg is None or not groups:
            return groups
        rounds = torch.randint(1, cfg['max_rounds'] + 1, (len(groups), ))
        rounds[torch.rand(len(groups)) >= cfg['prob']] = 0
        chosen = rounds.nonzero(as_tuple=True)[0].tolist()
        if not chosen:
            return groups
        groups = list(groups)
        grid_hw = tuple(feats.shape[-2:])
        editable, clickers = {}, {}
        for i in chosen:
            g, tgt = groups[i], group_targets[i]
            # objects without a ground-truth segment have no error to correct; an object given by
            # a mask prompt (a VOS reference mask) is not a click session
            edit = tgt >= 0
            if 'masks' in g.prompts:
                edit &= ~(g.prompts.masks > 0).flatten(1).any(1).to(edit.device)
            gt = torch.zeros(len(tgt), *grid_hw, dtype=torch.bool, device=feats.device)
            if edit.any():
                full = targets[g.batch].masks[tgt[edit], g.frame].float()
                gt[edit] = F.interpolate(full[:, None], size=grid_hw, mode='area')[:, 0] > 0.5
            valid = image_region(frames[g.batch][g.frame], input_hw, grid_hw, feats.device)
            editable[i] = edit
            clickers[i] = CorrectiveClicks(gt, valid.expand_as(gt), input_hw)
        for r in range(1, int(rounds.max()) + 1):
            active = [i for i in chosen if rounds[i] >= r]
            frame_feats = torch.stack([feats[groups[i].batch, :, groups[i].frame]
                                       for i in active])[:, :, None]
            with torch.no_grad():
                tokens = self._encode_frame_prompts([groups[i].prompts for i in active], frame_feats,
                                                    input_hw, [texts[i] for i in active])
                logits = self.panoptic_head(frame_feats, tokens, run_objects=False,
                                            num_stages=self._interactive_stages,
                                            mask_refiner=self.mask_refiner).final.prm_mask[:, 0]
            for i, lg in zip(active, logits.split([len(groups[i].prompts) for i in active])):
                points, labels = clickers[i].next_clicks(lg > 0)
                sample = frames[groups[i].batch][groups[i].frame]
                groups[i] = dataclasses.replace(groups[i], prompts=_corrected_prompts(
                    groups[i].prompts, points, labels, lg, editable[i], sample, input_hw))
        return groups

    def _stream_prompt_queries(self, out: HeadOutput, feats: torch.Tensor, images: torch.Tensor,
                               groups: List[PromptGroup], group_targets: List[torch.Tensor],
                               tokens: PromptTokens) -> Tuple[PromptTokens, torch.Tensor, torch.Tensor]:
        """Training on clips with a memory: decode each sample's objects frame by frame through
        the streaming path at the router's ``'vos'`` depth (as ``predict`` does) and put the
        per-frame results, stacked over the clip, into the prompt entries of ``out``'s steps (its
        stages in order, the streamed output step into its output step).

        An object is the target row its prompts were drawn from (a prompt without a target is an
        object of its own): its first prompt adds it on that frame, a later one re-prompts it.
        Frames before its first prompt carry ``ABSENT_LOGIT``; the class logits and predicted IoU
        are the means over the frames it was decoded on.

        Returns:
            The tokens of each object's first prompt row (one row per object, grouped by sample),
            each object's target row and, per prompt row of ``tokens``, its object.
        """
        head, num_frames = self.panoptic_head, feats.shape[2]
        counts = [len(g.prompts) for g in groups]
        starts = torch.tensor([0] + counts).cumsum(0).tolist()
        objects: Dict[Tuple[int, Hashable], int] = {}
        first_rows, obj_targets, decoded = [], [], []  # decoded: per object {frame: (output, row)}
        row_objects = torch.zeros(tokens.num_prompts, dtype=torch.long)
        for b in sorted({g.batch for g in groups}):
            by_frame = {g.frame: i for i, g in enumerate(groups) if g.batch == b}
            tracker = StreamingTracker(self._new_memory())
            for t in range(min(by_frame), num_frames):
                own, keys = None, []
                if t in by_frame:
                    i = by_frame[t]
                    keys = [x if x >= 0 else ('untargeted', t, j)
                            for j, x in enumerate(group_targets[i].tolist())]
                    if len(set(keys)) != len(keys):
                        raise ValueError(
                            f'sample {b} frame {t}: several prompts were drawn from the same '
                            f'ground-truth object (target rows {group_targets[i].tolist()}); a '
                            'frame prompts each object once')
                    rows = torch.arange(starts[i], starts[i + 1], device=feats.device)
                    for row, key in zip(rows.tolist(), keys):
                        if (b, key) not in objects:
                            objects[b, key] = len(first_rows)
                            first_rows.append(row)
                            obj_targets.append(key if isinstance(key, int) else -1)
                            decoded.append({})
                        row_objects[row] = objects[b, key]
                    zeros = torch.zeros_like(rows)
                    own = dataclasses.replace(tokens.select(rows), batch_index=zeros,
                                              frame_index=zeros)
                ids, step_out = tracker.step(head, feats[b:b + 1, :, t:t + 1], t, own, keys,
                                             self._stream_stages, self.mask_refiner,
                                             image=images[b:b + 1, t])
                for j, key in enumerate(ids):
                    decoded[objects[b, key]][t] = (step_out, j)
        num_steps = len(next(iter(decoded[0].values()))[0].steps)
        out_steps = out.steps[:num_steps - 1] + [out.steps[-1]]
        absent = feats.new_full(feats.shape[-2:], ABSENT_LOGIT)
        for k, step in enumerate(out_steps):
            fields = dict(prm_mask=[], prm_cls=[], prm_query=[], prm_cls_embed=[], prm_iou=[])
            for per_frame in decoded:
                seen = [(o.steps[k], j) for o, j in per_frame.values()]  # in frame order
                fields['prm_mask'].append(torch.stack([
                    per_frame[t][0].steps[k].prm_mask[per_frame[t][1], 0] if t in per_frame
                    else absent for t in range(num_frames)]))
                fields['prm_cls'].append(torch.stack([s.prm_cls[j] for s, j in seen]).mean(0))
                last, j = seen[-1]
                fields['prm_query'].append(last.prm_query[j])
                fields['prm_cls_embed'].append(last.prm_cls_embed[j])
                if last.prm_iou is not None:
                    fields['prm_iou'].append(torch.stack([s.prm_iou[j] for s, j in seen]).mean(0))
            for name, values in fields.items():
                setattr(step, name, torch.stack(values) if values else None)
        first_rows = torch.tensor(first_rows, device=feats.device)
        return (tokens.select(first_rows), torch.tensor(obj_targets, device=feats.device),
                row_objects.to(feats.device))

    def _distill_losses(self, batch_inputs: torch.Tensor, groups: List[PromptGroup],
                        student_feats: Dict[str, torch.Tensor],
                        row_logits: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Run the teacher once on every frame with the prompts the student decoded (see the class
        docstring) and distil its features and, for the prompt rows, its masks."""
        images = self._teacher_images(batch_inputs)
        num_frames = batch_inputs.shape[1] if batch_inputs.dim() == 5 else 1
        prompts: List[Optional[InstanceData]] = [None] * len(images)
        for g in groups:  # (sample, frame) order = the order of the student's prompt rows
            prompts[g.batch * num_frames + g.frame] = g.prompts
        with torch.no_grad():
            taught = self.teacher(images, prompts if groups else None,
                                  mask_size=None if row_logits is None else tuple(row_logits.shape[-2:]))
        losses = {}
        if self.distill_loss.pairs:
            losses.update(self.distill_loss.feature_loss(student_feats, taught.feats))
        if row_logits is not None and taught.mask_logits is not None:
            losses.update(self.distill_loss.mask_loss(row_logits, taught.mask_logits, taught.valid))
        return losses

    def _teacher_images(self, batch_inputs: torch.Tensor) -> torch.Tensor:
        """The normalised batch (images or clips) -> frames ``[N, 3, H, W]``, RGB, 0..255."""
        images = batch_inputs.flatten(0, 1) if batch_inputs.dim() == 5 else batch_inputs
        pre = self.data_preprocessor
        images = images.float()
        if getattr(pre, '_enable_normalize', False):
            images = images * pre.std + pre.mean
        return images if self._rgb_inputs else images.flip(1)

    # ------------------------------------------------------------------ inference
    def predict(self, batch_inputs: torch.Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        self._ensure_class_embeds()
        frames = self._frames(batch_data_samples)
        num_frames = batch_inputs.shape[1] if batch_inputs.dim() == 5 else 1
        decision = self._route(frames, len(frames), num_frames)
        if decision.use_memory:
            for b, clip in enumerate(frames):
                clip_inputs = batch_inputs[b] if batch_inputs.dim() == 5 else batch_inputs[b:b + 1]
                self._predict_stream(clip_inputs, clip, decision, rescale)
            return batch_data_samples
        feats = self._clip_feats(batch_inputs, use_pruner=decision.use_pruner)
        input_hw = tuple(batch_inputs.shape[-2:])
        groups = self._prompt_groups(frames) if decision.query_set != 'object' else []
        tokens = self._encode_prompts(groups, feats, input_hw)
        prompted = [any(g.batch == b for g in groups) for b in range(len(frames))]
        if decision.query_set == 'prompt' and not all(prompted):
            raise ValueError(f'RapSAM: mode {self.mode!r} runs the prompt queries only, but sample(s) '
                             f'{[b for b, p in enumerate(prompted) if not p]} of the batch have no '
                             f'prompts')
        out = self.panoptic_head(feats, tokens, run_objects=decision.query_set != 'prompt',
                                 num_stages=decision.num_stages, mask_refiner=self.mask_refiner)
        final = out.final
        for b, clip in enumerate(frames):
            if prompted[b]:
                rows, obj_ids = _clip_prompt_objects(b, clip, groups, tokens)
                self._predict_prompts(clip, final, rows, obj_ids, input_hw, rescale)
            elif len(clip) == 1:
                self._predict_panoptic(clip[0], final.obj_cls[b], final.obj_mask[b, :, 0], input_hw,
                                       rescale)
            else:
                self._predict_video_instances(clip, final.obj_cls[b], final.obj_mask[b], input_hw, rescale)
        return batch_data_samples

    # ------------------------------------------------------------------ image predictor API
    # ``seg.apis.FastSAM2ImagePredictor``: the image embedding is computed once per image and every
    # prompt decode reuses it, so a re-prompt costs only the prompt encoder and the prompt queries.
    def encode_image(self, inputs: torch.Tensor, mode: str = 'interactive') -> torch.Tensor:
        """Preprocessed images ``[B, 3, H, W]`` (``preprocess_frame``) -> their embedding
        ``[B, C, 1, h, w]`` (backbone + neck), for ``decode_prompts`` / ``decode_objects``.

        ``mode``: the TaskRouter rule whose ``use_pruner`` applies (``'interactive'`` for prompts,
        ``'panoptic'`` for the object queries); without a router the pruner runs."""
        if inputs.dim() != 4 or inputs.shape[1] != 3:
            raise ValueError(f'RapSAM.encode_image: inputs must be images [B, 3, H, W], got '
                             f'{tuple(inputs.shape)}')
        use_pruner = True
        if self.task_router is not None:
            if mode not in self.task_router.rules:
                raise ValueError(f'RapSAM.encode_image: unknown mode {mode!r}; the router has '
                                 f'{sorted(self.task_router.rules)}')
            use_pruner = self.task_router.rules[mode]['use_pruner']
        return self._clip_feats(inputs, use_pruner=use_pruner)

    def decode_prompts(self, feats: torch.Tensor, prompts: Sequence[Optional[InstanceData]],
                       input_hw: Tuple[int, int], multimask: bool = False,
                       types: Optional[Set[str]] = None,
                       feat_cache: Optional[Dict[str, torch.Tensor]] = None,
                       single_mask: bool = True, classes: bool = True
                       ) -> Tuple[StepOutput, PromptTokens]:
        """Decode prompts on cached image embeddings (``encode_image``) through the prompt path
        alone: prompt encoder, prompt queries at the TaskRouter's ``'interactive'`` depth (all
        stages without a router), prompt refiner, IoU head, and with ``multimask`` the multimask
        candidates. Objects are decoded independently of each other (see the head's ``decode``).

        Args:
            feats: ``[B, C, 1, h, w]``.
            prompts: per image, its prompts (``seg.structures.build_prompts`` fields, pixels of
                the padded input ``input_hw``) or None.
            input_hw: the padded input size the coordinates live in.
            multimask: also form ``prm_multi_mask`` / ``prm_multi_iou`` (needs the head's
                ``multimask_decoder``).
            types: the prompt types present (``prompt_types``), when the caller knows them
                (saves device syncs); default: read from ``prompts``.
            feat_cache: a dict kept by the caller for as long as ``feats`` is the same: the
                head's prompt-independent projections of ``feats`` are computed once into it (see
                ``RapSAMVideoHead.decode``).
            single_mask: False when only the multimask candidates will be read: the single
                mask's refiners are skipped (see ``RapSAMVideoHead.decode``).
            classes: False when only the multimask candidates will be read, no class of the
                prompts: ``prm_cls`` is not formed (see ``RapSAMVideoHead.decode``).

        Returns:
            The output step (prompt entries; rows grouped by image, in prompt-row order) and the
            encoded prompts (``batch_index``: the image of each row).
        """
        if len(prompts) != feats.shape[0]:
            raise ValueError(f'RapSAM.decode_prompts: {len(prompts)} prompt sets for '
                             f'{feats.shape[0]} image embeddings')
        groups = [PromptGroup(b, 0, p) for b, p in enumerate(prompts) if p is not None and len(p)]
        if not groups:
            raise ValueError('RapSAM.decode_prompts: no prompts given')
        self._ensure_class_embeds()
        if types is None:
            types = set().union(*(prompt_types(g.prompts) for g in groups))
        num_stages = (self.panoptic_head.num_stages if self.task_router is None
                      else self.task_router.route('interactive', types).num_stages)
        tokens = self._encode_prompts(groups, feats, input_hw)
        out = self.panoptic_head(feats, tokens, run_objects=False, num_stages=num_stages,
                                 mask_refiner=self.mask_refiner, multimask=multimask,
                                 feat_cache=feat_cache, single_mask=single_mask, classes=classes)
        return out.final, tokens

    def decode_objects(self, feats: torch.Tensor) -> StepOutput:
        """The object queries (the panoptic path, at the TaskRouter's ``'panoptic'`` depth) on
        image embeddings ``encode_image(mode='panoptic')``: ``obj_cls [B, Q, K+1]``, ``obj_mask
        [B, Q, 1, h, w]`` of the output step."""
        self._ensure_class_embeds()
        num_stages = (self.panoptic_head.num_stages if self.task_router is None
                      else self.task_router.rules['panoptic']['num_stages'])
        return self.panoptic_head(feats, None, run_objects=True, num_stages=num_stages,
                                  mask_refiner=self.mask_refiner).final

    def _predict_panoptic(self, sample: DetDataSample, cls: torch.Tensor, mask: torch.Tensor,
                          input_hw: tuple, rescale: bool) -> None:
        res = self.panoptic_fusion_head.predict_grid(cls, mask, sample, input_hw, rescale)
        if 'pan_results' in res:
            sample.pred_panoptic_seg = res['pan_results']
        if 'ins_results' in res:
            sample.pred_instances = res['ins_results']

    def _predict_prompts(self, clip: List[DetDataSample], final: StepOutput, rows: torch.Tensor,
                         obj_ids: torch.Tensor, input_hw: tuple, rescale: bool) -> None:
        """The masks of the prompt ``rows`` of ``final`` on every frame of the clip, at the
        original (or input) resolution, as objects ``obj_ids``."""
        iou = None if final.prm_iou is None else final.prm_iou[rows]
        for t, frame in enumerate(clip):
            frame.pred_instances = _prompt_instances(final.prm_mask[rows, t], final.prm_cls[rows],
                                                     obj_ids, frame, input_hw, rescale, iou)

    def _predict_video_instances(self, clip: List[DetDataSample], cls: torch.Tensor, masks: torch.Tensor,
                                 input_hw: tuple, rescale: bool) -> None:
        """Per-clip instances: the top ``max_per_video`` (query, class) pairs over the clip (shared
        queries => one mask per frame each). Every pair is a track of its own, ``instances_id`` =
        its rank (a query scoring for two classes gives two tracks: the YouTube-VIS metric groups
        by id), with per-frame ``masks`` and their tight ``bboxes`` (xyxy, zeros when empty)."""
        probs = cls.softmax(-1)[:, :-1]
        k = min(self.test_cfg.get('max_per_video', 10), probs.numel())
        scores, flat = probs.flatten().topk(k)
        q_idx, labels = flat // probs.shape[1], flat % probs.shape[1]
        keep = scores > self.test_cfg.get('video_score_thr', 0.0)
        q_idx, labels, scores = q_idx[keep], labels[keep], scores[keep]
        track_ids = torch.arange(len(q_idx), device=q_idx.device)
        for t, frame in enumerate(clip):
            binary = to_output_res(masks[q_idx, t], frame, input_hw, rescale) > 0
            frame.pred_track_instances = InstanceData(masks=binary, bboxes=mask2bbox(binary),
                                                      scores=scores, labels=labels,
                                                      instances_id=track_ids)

    def _forward(self, batch_inputs: torch.Tensor, batch_data_samples: Optional[SampleList] = None
                 ) -> HeadOutput:
        """Tensor mode: the routed decode of the whole input at once (no streaming)."""
        frames = self._frames(batch_data_samples) if batch_data_samples is not None else None
        num_frames = batch_inputs.shape[1] if batch_inputs.dim() == 5 else 1
        decision = self._route(frames, len(batch_inputs), num_frames)
        feats = self._clip_feats(batch_inputs, use_pruner=decision.use_pruner)
        tokens = None
        if frames is not None and decision.query_set != 'object':
            tokens = self._encode_prompts(self._prompt_groups(frames), feats,
                                          tuple(batch_inputs.shape[-2:]))
        return self.panoptic_head(feats, tokens, run_objects=decision.query_set != 'prompt',
                                  num_stages=decision.num_stages, mask_refiner=self.mask_refiner)

    # ------------------------------------------------------------------ streaming VOS
    def new_tracker(self) -> StreamingTracker:
        """The state of a new video for ``track_step``: no objects, an empty memory, no cached
        token-pruner scores. The caller holds it, so one model serves any number of videos."""
        if self.memory_cfg is None:
            raise RuntimeError("RapSAM: the model has no memory=dict(type='StreamingMemory', ...); "
                               'streaming VOS is off')
        return StreamingTracker(self._new_memory())

    def preprocess_frame(self, frame: torch.Tensor, sample: Optional[DetDataSample] = None
                         ) -> Tuple[torch.Tensor, DetDataSample]:
        """One raw frame ``[3, H, W]`` as a dataset packs it (loader channel order) -> normalised,
        resized, padded ``[1, 3, H', W']`` and its sample, through the model's (image or video) data
        preprocessor. ``sample`` (default: a new one) gets ``img_shape`` / ``ori_shape`` = the frame
        size and ``scale_factor`` 1 where it has none; prompts it carries are scaled with the frame."""
        if frame.dim() != 3 or frame.shape[0] != 3:
            raise ValueError(f'RapSAM.preprocess_frame: frame must be an image [3, H, W], got '
                             f'{tuple(frame.shape)}')
        sample = sample if sample is not None else DetDataSample()
        h, w = frame.shape[-2:]
        for key, default in (('img_shape', (h, w)), ('ori_shape', (h, w)), ('scale_factor', (1.0, 1.0))):
            if key not in sample.metainfo:
                sample.set_metainfo({key: default})
        if isinstance(self.data_preprocessor, TrackDataPreprocessor):
            track = TrackDataSample()
            track.video_data_samples = [sample]
            data = self.data_preprocessor(dict(inputs=[frame[None]], data_samples=[track]), False)
            return data['inputs'][:, 0], data['data_samples'][0].video_data_samples[0]
        data = self.data_preprocessor(dict(inputs=[frame], data_samples=[sample]), False)
        return data['inputs'], data['data_samples'][0]

    def track_step(self, tracker: StreamingTracker, inputs: torch.Tensor, sample: DetDataSample,
                   step: int, decision: Optional[RouteDecision] = None, rescale: bool = True,
                   track_others: bool = True, grid: bool = False) -> InstanceData:
        """Segment one preprocessed frame ``[1, 3, H, W]`` of the video ``tracker`` follows:
        one head forward for all its objects, constant cost per frame.

        Args:
            tracker: the video's state (``new_tracker``); updated in place.
            inputs / sample: ``preprocess_frame``'s output. ``sample.prompts`` (pixels of
                ``inputs``), if any, add objects or re-prompt tracked ones (``obj_ids`` field, see
                the class docstring).
            step: strictly increasing over the tracker's calls (the memory's clock: ages and
                key-frame spacing count steps), not necessarily the frame index, so a caller may
                walk a video backwards.
            decision: the routing of the whole clip (``predict``); None routes this frame as mode
                ``'vos'`` (number of frames = ``step + 1``).
            rescale: masks at ``ori_shape`` (else ``img_shape``).
            track_others: False decodes the prompted objects only, and ``step`` may repeat the
                last one: re-prompting the frame just tracked (a click on a live stream).
            grid: masks as decoded, on the mask grid over the padded input ``[K, h, w]``
                (``rescale`` ignored): for a caller that stores them small and resamples them
                itself (``mask_geometry.to_output_res``), as the video predictor does.

        Returns:
            ``pred_instances`` (``mask_logits``, ``masks``, ``scores``, ``labels``,
            ``instances_id``) of the decoded objects: tracked ones first, then the prompted ones.
        """
        self._ensure_class_embeds()
        if decision is None:
            decision = self._route([[sample]], 1, step + 1, mode='vos')
            if not decision.use_memory:
                raise ValueError("RapSAM.track_step: the task_router's 'vos' rule must turn the "
                                 'memory on (use_memory=True)')
        input_hw = tuple(inputs.shape[-2:])
        prompted = _has_prompts(sample)
        if not prompted and not (track_others and tracker.object_ids):  # nothing to follow yet
            return _empty_instances(sample, rescale, inputs.device)
        # where the objects are: only the regional encoder needs it (prompted frames: in full)
        masks = None if prompted or self.regional_features is None else tracker.latest_masks()
        feat = self._tracker_feats(tracker, inputs, decision.use_pruner, masks)
        tokens, ids = None, []
        if prompted:
            tokens = self._encode_prompts([PromptGroup(0, 0, sample.prompts)], feat, input_hw)
            ids = _prompt_object_ids(sample, tracker.next_free_id())
        ids, out = tracker.step(self.panoptic_head, feat, step, tokens, ids, decision.num_stages,
                                self.mask_refiner, track_others=track_others, image=inputs)
        final = out.final
        return _prompt_instances(final.prm_mask[:, 0], final.prm_cls,
                                 torch.tensor(ids, dtype=torch.long, device=inputs.device), sample,
                                 input_hw, rescale, final.prm_iou, grid=grid)

    def _tracker_feats(self, tracker: StreamingTracker, inputs: torch.Tensor, use_pruner: bool,
                       masks: Optional[torch.Tensor]) -> torch.Tensor:
        """The frame's feature ``[1, C, 1, h, w]``, the token pruner reading and writing the
        tracker's cached scores (a video's state, kept off the model). With ``regional_features``
        the encoder runs only around ``masks`` (the tracked objects' latest logits; None on a
        prompted frame: computed in full), its state kept in the tracker too."""
        pruner = self.backbone.token_pruner if self._has_pruner() else None

        def encode(images: torch.Tensor) -> torch.Tensor:
            if images.shape[-2:] != inputs.shape[-2:]:
                # a crop: its pruning scores cannot come from the whole frame's cache
                return self.extract_feat(images, video=False, use_pruner=use_pruner)
            if pruner is not None:
                pruner.video_cache = tracker.pruner_cache
            feat = self.extract_feat(images, video=True, use_pruner=use_pruner)
            if pruner is not None:
                tracker.pruner_cache = pruner.video_cache
            return feat

        if self.regional_features is None:
            return encode(inputs)[:, :, None]
        feat, tracker.region_state = self.regional_features(encode, inputs, tracker.region_state,
                                                            masks)
        return feat[:, :, None]

    def _predict_stream(self, clip_inputs: torch.Tensor, clip: List[DetDataSample],
                        decision: RouteDecision, rescale: bool) -> None:
        """One clip ``[T, 3, H, W]`` through the streaming path, frame by frame, fresh memory."""
        tracker = self.new_tracker()
        for t, frame in enumerate(clip):
            frame.pred_instances = self.track_step(tracker, clip_inputs[t:t + 1], frame, t, decision,
                                                   rescale)


def _has_prompts(sample: DetDataSample) -> bool:
    return 'prompts' in sample and len(sample.prompts) > 0


def prompt_types(prompts: InstanceData) -> Set[str]:
    """The TaskRouter prompt types (point / box / mask / text) present in a prompt ``InstanceData``."""
    types = set()
    if (prompts.point_labels >= 0).any():
        types.add('point')
    if prompts.box_valid.any():
        types.add('box')
    if 'masks' in prompts and (prompts.masks > 0).any():
        types.add('mask')
    if 'texts' in prompts and any(prompts.texts):
        types.add('text')
    return types


def _prompt_object_ids(sample: DetDataSample, first_free_id: int) -> List[int]:
    """Object id of each prompt row: ``prompts.obj_ids``, else the ground-truth instance ids the
    prompts were drawn from (``gt_instances.instances_ids[gt_ids]``: DAVIS ids), else new ids
    from ``first_free_id`` on."""
    p = sample.prompts
    where = sample.metainfo.get('img_path', 'the frame')
    if 'obj_ids' in p:
        ids = torch.as_tensor(p.obj_ids).tolist()
    elif ('gt_instances' in sample and 'instances_ids' in sample.gt_instances
          and (p.gt_ids >= 0).all()):
        known = sample.gt_instances.instances_ids
        if (p.gt_ids >= len(known)).any():
            raise ValueError(f'{where}: prompt gt_ids {p.gt_ids.tolist()} point past its '
                             f'{len(known)} gt_instances')
        ids = known[p.gt_ids.to(known.device)].tolist()
    else:
        ids = list(range(first_free_id, first_free_id + len(p)))
    if not all(isinstance(i, int) for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f'{where}: prompt object ids must be distinct ints, got {ids}')
    return ids


def _clip_prompt_objects(batch: int, clip: List[DetDataSample], groups: List[PromptGroup],
                         tokens: PromptTokens) -> Tuple[torch.Tensor, torch.Tensor]:
    """The prompt rows of sample ``batch`` that ``predict`` reports and their object ids.

    An image reports every row, as objects 1..N. A clip reports one row per object id
    (``_prompt_object_ids`` of each prompted frame): a later prompt of an object replaces its
    earlier one, new objects come after the known ones."""
    rows = (tokens.batch_index == batch).nonzero(as_tuple=True)[0]
    if len(clip) == 1:
        return rows, torch.arange(1, len(rows) + 1, device=rows.device)
    latest: Dict[int, int] = {}  # object id -> row, in order of first prompt
    start = 0
    for g in (g for g in groups if g.batch == batch):
        ids = _prompt_object_ids(clip[g.frame], max(latest, default=0) + 1)
        for row, obj_id in zip(rows[start:start + len(ids)].tolist(), ids):
            latest[obj_id] = row
        start += len(ids)
    return (torch.tensor(list(latest.values()), dtype=torch.long, device=rows.device),
            torch.tensor(list(latest), dtype=torch.long, device=rows.device))


def _prompt_instances(logits: torch.Tensor, cls: torch.Tensor, obj_ids: torch.Tensor,
                      sample: DetDataSample, input_hw: tuple, rescale: bool,
                      iou: Optional[torch.Tensor] = None, grid: bool = False) -> InstanceData:
    """Per-object mask logits ``[N, h, w]``, class logits ``[N, K+1]`` and predicted IoU ``[N]``
    (None: none) -> ``pred_instances``; the scores are the predicted IoU, else the top class
    probability. ``grid``: the masks stay on the mask grid (not resampled)."""
    probs, labels = cls[:, :-1].softmax(-1).max(-1)
    if not grid:
        logits = to_output_res(logits, sample, input_hw, rescale)
    return InstanceData(mask_logits=logits, masks=logits > 0, labels=labels,
                        scores=probs if iou is None else iou, instances_id=obj_ids)


def _empty_instances(sample: DetDataSample, rescale: bool, device: torch.device) -> InstanceData:
    h, w = (sample.ori_shape if rescale else sample.img_shape)[:2]
    return InstanceData(mask_logits=torch.zeros(0, h, w, device=device),
                        masks=torch.zeros(0, h, w, dtype=torch.bool, device=device),
                        labels=torch.zeros(0, dtype=torch.long, device=device),
                        scores=torch.zeros(0, device=device),
                        instances_id=torch.zeros(0, dtype=torch.long, device=device))


def _frames_first(feats: torch.Tensor) -> torch.Tensor:
    """Clip features ``[B, C, T, h, w]`` -> per frame ``[B * T, C, h, w]`` (frame order b, t)."""
    return feats.transpose(1, 2).flatten(0, 1)


def _corrected_prompts(prompts: InstanceData, points: torch.Tensor, labels: torch.Tensor,
                       logits: torch.Tensor, editable: torch.Tensor, sample: DetDataSample,
                       input_hw: Tuple[int, int]) -> InstanceData:
    """``prompts`` after one correction round: each row's click appended (label -1 where there is
    none) and, on the ``editable`` rows, the prediction (``logits [n, h, w] > 0`` at input
    resolution, zero on the padding) as mask prompt."""
    out = prompts.clone()
    points, labels = points.to(prompts.points), labels.to(prompts.point_labels)
    out.points = torch.cat([prompts.points, points[:, None]], dim=1)
    out.point_labels = torch.cat([prompts.point_labels, labels[:, None]], dim=1)
    masks = (F.interpolate(logits[:, None], size=input_hw, mode='bilinear',
                           align_corners=False)[:, 0] > 0).float()
    img_h, img_w = sample.img_shape[:2]
    masks[:, img_h:] = 0
    masks[:, :, img_w:] = 0
    old = prompts.masks.to(masks) if 'masks' in prompts else torch.zeros_like(masks)
    edit = editable.to(masks.device)[:, None, None]
    out.masks = torch.where(edit, masks, old)
    return out
