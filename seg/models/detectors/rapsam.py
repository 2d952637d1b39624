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
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from seg.registry import MODELS
from ..heads.rapsam_head import HeadOutput
from ..heads.sam_prompt_encoder import PromptTokens
from ..utils.memory_adapter import StreamingMemory
from ..utils.task_router import MODES, RouteDecision
from .streaming_tracker import StreamingTracker

SampleList = List[Union[DetDataSample, TrackDataSample]]
CLASS_TEMPLATES = ('a photo of a {}.', 'a photo of the {}.', 'a photo of a small {}.',
                   'a photo of a large {}.')
# mask logits of a tracked object on the frames of a training clip before its prompt
ABSENT_LOGIT = -20.0


@MODELS.register_module()
class RapSAM(BaseDetector):
    """Backbone -> YOSO neck -> RapSAM head, for images ``[B, 3, H, W]`` (``DetDataSample``) and clips
    ``[B, T, 3, H, W]`` (``TrackDataSample``).

    A sample whose (first prompted) frame carries ``prompts`` is decoded by its prompt queries
    (interactive / VOS); otherwise the object queries give panoptic (images) or per-clip instance
    (video) results. Training runs both: Hungarian-matched object queries and prompt queries
    supervised by the instance each prompt was drawn from.

    FastSAM2 switches (all None = the RapSAM baseline):

    - ``task_router``: a ``TaskRouter`` consulted once per inference forward (``predict``,
      ``_forward``, ``track_frame``) with the mode, the prompt types present and the number of
      frames; its ``RouteDecision`` sets the decoder stages run, the active query set (prompt /
      object / both), the backbone's token pruner on/off and the streaming-memory path. Training
      runs the whole model (every stage and query set: each must learn). Without a router an
      inference forward runs every stage, the query sets its inputs need and the pruner, and
      streams when the mode is ``'vos'`` and a memory is configured.
    - ``mode``: ``'auto'`` infers it per forward: every sample prompted -> ``'vos'`` for clips,
      ``'interactive'`` for images; otherwise ``'panoptic'``. Or fix one of the router's modes.
      May be changed on the built model (``model.mode = 'vos'``).
    - ``memory``: a ``StreamingMemory`` config; turns on the streaming VOS path (``init_video`` /
      ``track_frame`` / ``remove_object``, and clips routed to the memory in ``predict``) and, in
      training on clips, decodes the prompt queries frame by frame through it (see
      ``StreamingTracker``; the head needs a ``memory_reader``). A fresh memory serves each video.
    - ``mask_refiner``: a ``MaskStateRefiner`` config applied to the final mask logits with the
      neck feature (identity at initialisation).

    Streaming output: ``pred_instances`` per frame (``masks``, ``mask_logits``, ``scores``,
    ``labels``, ``instances_id``) with one row per tracked object. Object ids come from the optional
    ``prompts.obj_ids`` field (long [N]), else from the prompted frame's
    ``gt_instances.instances_ids[prompts.gt_ids]`` (the DAVIS ids), else the next free ints from 1;
    a prompt with a tracked id re-prompts that object.

    Args:
        class_names: names of the things then stuff classes; their CLIP text embeddings are the
            classifier weights (computed once, on first use, with the frozen text tower).
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
        self.train_cfg = train_cfg or {}
        # instance results take the top (query, class) pairs: there are only num_queries * num_classes
        candidates = head.num_queries * head.num_classes
        if self.test_cfg.get('max_per_image', 100) > candidates:
            self.test_cfg['max_per_image'] = candidates
        fusion = dict(type='mmdet.MaskFormerFusionHead', num_things_classes=head.num_things_classes,
                      num_stuff_classes=head.num_stuff_classes, test_cfg=self.test_cfg)
        fusion.update(panoptic_fusion_head or {})
        self.panoptic_fusion_head = MODELS.build(fusion)
        self._class_embeds_ready = False

        self.task_router = None if task_router is None else MODELS.build(task_router)
        if self.task_router is not None:
            too_deep = {m: r['num_stages'] for m, r in self.task_router.rules.items()
                        if r['num_stages'] > head.num_stages}
            if too_deep:
                raise ValueError(f'task_router rules ask for more decoder stages than the head has '
                                 f'({head.num_stages}): {too_deep}')
        self.mode = mode
        self._check_mode(mode)
        self.memory_cfg = copy.deepcopy(memory)
        if memory is not None:
            self._new_memory()  # a bad memory config fails at build time
            if head.memory_reader is None:
                raise ValueError('memory= needs the head to read it: set panoptic_head.memory_reader '
                                 "(e.g. dict(type='MemoryCrossAttention'))")
        self.mask_refiner = None if mask_refiner is None else MODELS.build(mask_refiner)
        self.last_decision: Optional[RouteDecision] = None  # of the last inference forward
        self._stream: Optional[StreamingTracker] = None
        self._stream_frames = 0

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
        """Classifier weights = mean CLIP text embedding of the templated class names (frozen)."""
        if self._class_embeds_ready:
            return
        with torch.no_grad():
            embeds = torch.stack([
                F.normalize(self.backbone.encode_text([t.format(name) for t in CLASS_TEMPLATES]),
                            dim=-1).mean(0) for name in self.class_names])
        self.panoptic_head.set_class_embeddings(embeds)
        self._class_embeds_ready = True

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # the checkpoint carries the class embeddings it was trained with: keep them
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._class_embeds_ready = 'panoptic_head.class_text_embeds' in state_dict
        return result

    # ------------------------------------------------------------------ sample handling
    @staticmethod
    def _frames(samples: SampleList) -> List[List[DetDataSample]]:
        return [list(s.video_data_samples) if isinstance(s, TrackDataSample) else [s] for s in samples]

    def _encode_prompts(self, frames: List[List[DetDataSample]], feats: torch.Tensor,
                        input_hw: Tuple[int, int]) -> Tuple[Optional[PromptTokens], List[Optional[int]]]:
        """Prompts of each sample (its first prompted frame) -> tokens; also returns that frame."""
        prompts, frame_ids, texts = [], [], []
        for clip in frames:
            t = _first_prompted(clip)
            frame_ids.append(t)
            p = clip[t].prompts if t is not None else None
            prompts.append(p)
            if p is not None and 'texts' in p and any(p.texts):
                with torch.no_grad():
                    texts.append(self.backbone.encode_text([s or ' ' for s in p.texts]))
            else:
                texts.append(None)
        if all(p is None for p in prompts):
            return None, frame_ids
        tokens = self.panoptic_head.prompt_encoder(prompts, [t or 0 for t in frame_ids], feats,
                                                   input_hw, texts)
        return tokens, frame_ids

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
            prompted = [_first_prompted(clip) is not None for clip in frames]
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

    def _reset_backbone(self) -> None:
        """A new video: forget the token pruner's cached scores."""
        if self._has_pruner():
            self.backbone.reset()

    def _clip_targets(self, clip: List[DetDataSample], device: torch.device
                      ) -> Tuple[InstanceData, list]:
        """Segments of a clip as ``masks [N, T, H, W]`` and ``labels [N]``, plus per frame the clip
        row of each target of that frame (to map prompt ``gt_ids``).

        Images: thing instances in ``gt_instances`` order, then one segment per stuff label of
        ``gt_sem_seg`` in ascending label order (the order ``GeneratePrompts`` indexes ``gt_ids`` in;
        255 is void). Clips: one row per ``instances_ids`` value, in order of first appearance.
        """
        if len(clip) == 1:
            return self._image_targets(clip[0], device)
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

    def _image_targets(self, sample: DetDataSample, device: torch.device) -> Tuple[InstanceData, list]:
        gt = sample.gt_instances
        labels, masks = [gt.labels.to(device)], [_mask_tensor(gt.masks, device)]
        head = self.panoptic_head
        if 'gt_sem_seg' in sample and head.num_stuff_classes > 0:
            sem = sample.gt_sem_seg.sem_seg[0].to(device)
            stuff = torch.unique(sem).sort().values
            stuff = stuff[(stuff >= head.num_things_classes) & (stuff < head.num_classes)]
            labels.append(stuff.long())
            masks.append(sem[None] == stuff[:, None, None])
        labels, masks = torch.cat(labels), torch.cat(masks)
        return (InstanceData(labels=labels, masks=masks[:, None]),
                [torch.arange(len(labels), device=device)])

    # ------------------------------------------------------------------ train
    def loss(self, batch_inputs: torch.Tensor, batch_data_samples: SampleList) -> Dict[str, torch.Tensor]:
        self._ensure_class_embeds()
        feats = self._clip_feats(batch_inputs)
        frames = self._frames(batch_data_samples)
        tokens, frame_ids = self._encode_prompts(frames, feats, tuple(batch_inputs.shape[-2:]))
        stream = self.memory_cfg is not None and feats.shape[2] > 1 and tokens is not None
        out = self.panoptic_head(feats, None if stream else tokens, run_objects=True,
                                 mask_refiner=self.mask_refiner)
        if stream:
            self._stream_prompt_queries(out, feats, tokens, frame_ids)
        targets, prompt_targets = [], []
        for clip, t in zip(frames, frame_ids):
            tgt, row_maps = self._clip_targets(clip, feats.device)
            if tgt.masks.shape[-2:] != batch_inputs.shape[-2:]:
                raise ValueError(
                    f'ground-truth masks {tuple(tgt.masks.shape[-2:])} do not match the batch input '
                    f'{tuple(batch_inputs.shape[-2:])}: set pad_mask=True and pad_seg=True in the '
                    'data preprocessor')
            targets.append(tgt)
            if t is not None:
                gt_ids = clip[t].prompts.gt_ids.to(feats.device)
                mapped = torch.full_like(gt_ids, -1)
                ok = gt_ids >= 0
                if (gt_ids >= len(row_maps[t])).any():
                    raise ValueError(
                        f'prompt gt_ids {gt_ids.tolist()} of {clip[t].metainfo.get("img_path")} point '
                        f'past the {len(row_maps[t])} ground-truth segments of that frame')
                mapped[ok] = row_maps[t][gt_ids[ok]]
                prompt_targets.append(mapped)
        prompt_targets = torch.cat(prompt_targets) if prompt_targets else None
        return self.panoptic_head.loss(out, targets, prompt_targets, tokens, feats=feats)

    def _stream_prompt_queries(self, out: HeadOutput, feats: torch.Tensor, tokens: PromptTokens,
                               frame_ids: List[Optional[int]]) -> None:
        """Training on clips with a memory: decode each sample's prompted objects frame by frame
        through the streaming path (as ``predict`` does) and put the per-frame results, stacked over
        the clip, into the prompt entries of ``out``'s steps. Frames before the prompted frame carry
        ``ABSENT_LOGIT`` (the object is not known yet); the class logits are the clip mean."""
        head, num_frames = self.panoptic_head, feats.shape[2]
        per_sample = []
        for b, t0 in enumerate(frame_ids):
            if t0 is None:
                continue
            rows = (tokens.batch_index == b).nonzero(as_tuple=True)[0]
            zeros = torch.zeros_like(rows)
            own = dataclasses.replace(tokens.select(rows), batch_index=zeros, frame_index=zeros)
            tracker = StreamingTracker(self._new_memory())
            per_sample.append([
                tracker.step(head, feats[b:b + 1, :, t:t + 1], t, own if t == t0 else None,
                             range(len(rows)) if t == t0 else (), mask_refiner=self.mask_refiner)[1]
                for t in range(t0, num_frames)])
        for k, step in enumerate(out.steps):
            fields = dict(prm_mask=[], prm_cls=[], prm_query=[], prm_cls_embed=[])
            for frame_outs in per_sample:
                steps = [o.steps[k] for o in frame_outs]
                masks = torch.stack([s.prm_mask[:, 0] for s in steps], dim=1)
                fields['prm_mask'].append(F.pad(masks, (0, 0, 0, 0, num_frames - masks.shape[1], 0),
                                                value=ABSENT_LOGIT))
                fields['prm_cls'].append(torch.stack([s.prm_cls for s in steps]).mean(0))
                fields['prm_query'].append(steps[-1].prm_query)
                fields['prm_cls_embed'].append(steps[-1].prm_cls_embed)
            for name, values in fields.items():
                setattr(step, name, torch.cat(values))

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
        tokens, frame_ids = None, [None] * len(frames)
        if decision.query_set != 'object':
            tokens, frame_ids = self._encode_prompts(frames, feats, input_hw)
        prompted = [t is not None for t in frame_ids]
        if decision.query_set == 'prompt' and not all(prompted):
            raise ValueError(f'RapSAM: mode {self.mode!r} runs the prompt queries only, but sample(s) '
                             f'{[b for b, p in enumerate(prompted) if not p]} of the batch have no '
                             f'prompts')
        out = self.panoptic_head(feats, tokens, run_objects=decision.query_set != 'prompt',
                                 num_stages=decision.num_stages, mask_refiner=self.mask_refiner)
        final = out.final
        prompt_rows = tokens.batch_index if tokens is not None else None
        for b, clip in enumerate(frames):
            if prompted[b]:
                rows = (prompt_rows == b).nonzero(as_tuple=True)[0]
                self._predict_prompts(clip, final.prm_mask[rows], final.prm_cls[rows], input_hw, rescale)
            elif len(clip) == 1:
                self._predict_panoptic(clip[0], final.obj_cls[b], final.obj_mask[b, :, 0], input_hw,
                                       rescale)
            else:
                self._predict_video_instances(clip, final.obj_cls[b], final.obj_mask[b], input_hw, rescale)
        return batch_data_samples

    def _predict_panoptic(self, sample: DetDataSample, cls: torch.Tensor, mask: torch.Tensor,
                          input_hw: tuple, rescale: bool) -> None:
        mask = F.interpolate(mask[None], size=input_hw, mode='bilinear', align_corners=False)
        res = self.panoptic_fusion_head.predict(cls[None], mask, [sample], rescale=rescale)[0]
        if 'pan_results' in res:
            sample.pred_panoptic_seg = res['pan_results']
        if 'ins_results' in res:
            sample.pred_instances = res['ins_results']

    def _predict_prompts(self, clip: List[DetDataSample], masks: torch.Tensor, cls: torch.Tensor,
                         input_hw: tuple, rescale: bool) -> None:
        """One mask per prompt on every frame of the clip, at the original (or input) resolution."""
        obj_ids = torch.arange(1, len(masks) + 1, device=masks.device)
        for t, frame in enumerate(clip):
            frame.pred_instances = _prompt_instances(masks[:, t], cls, obj_ids, frame, input_hw,
                                                     rescale)

    def _predict_video_instances(self, clip: List[DetDataSample], cls: torch.Tensor, masks: torch.Tensor,
                                 input_hw: tuple, rescale: bool) -> None:
        """Per-clip instances (shared queries => consistent ids over the clip)."""
        probs = cls.softmax(-1)[:, :-1]
        k = min(self.test_cfg.get('max_per_video', 10), probs.numel())
        scores, flat = probs.flatten().topk(k)
        q_idx, labels = flat // probs.shape[1], flat % probs.shape[1]
        keep = scores > self.test_cfg.get('video_score_thr', 0.0)
        q_idx, labels, scores = q_idx[keep], labels[keep], scores[keep]
        for t, frame in enumerate(clip):
            logits = _to_output_res(masks[q_idx, t], frame, input_hw, rescale)
            frame.pred_track_instances = InstanceData(masks=logits > 0, scores=scores, labels=labels,
                                                      instances_id=q_idx)

    def _forward(self, batch_inputs: torch.Tensor, batch_data_samples: Optional[SampleList] = None
                 ) -> HeadOutput:
        """Tensor mode: the routed decode of the whole input at once (no streaming)."""
        frames = self._frames(batch_data_samples) if batch_data_samples is not None else None
        num_frames = batch_inputs.shape[1] if batch_inputs.dim() == 5 else 1
        decision = self._route(frames, len(batch_inputs), num_frames)
        feats = self._clip_feats(batch_inputs, use_pruner=decision.use_pruner)
        tokens = None
        if frames is not None and decision.query_set != 'object':
            tokens, _ = self._encode_prompts(frames, feats, tuple(batch_inputs.shape[-2:]))
        return self.panoptic_head(feats, tokens, run_objects=decision.query_set != 'prompt',
                                  num_stages=decision.num_stages, mask_refiner=self.mask_refiner)

    # ------------------------------------------------------------------ streaming VOS
    def init_video(self) -> None:
        """Start a new video for ``track_frame``: no objects, an empty memory, a fresh pruner cache."""
        if self.memory_cfg is None:
            raise RuntimeError("RapSAM.init_video: the model has no memory=dict(type='StreamingMemory', "
                               '...); streaming VOS is off')
        self._ensure_class_embeds()
        self._stream = StreamingTracker(self._new_memory())
        self._stream_frames = 0
        self._reset_backbone()

    @property
    def stream(self) -> StreamingTracker:
        """The state of the video ``init_video`` started (objects, memory)."""
        if self._stream is None:
            raise RuntimeError('RapSAM: call init_video() before streaming frames')
        return self._stream

    def track_frame(self, frame: torch.Tensor, prompts: Optional[InstanceData] = None,
                    data_sample: Optional[DetDataSample] = None) -> InstanceData:
        """Segment the next frame of the video ``init_video`` started; constant cost per frame.

        Args:
            frame: the image ``[3, H, W]`` as a dataset packs it (the data preprocessor normalises,
                resizes and pads it).
            prompts: prompts on this frame (``seg.structures.build_prompts``, pixels of ``frame``):
                each row adds an object, or re-prompts a tracked one with the same id (optional
                ``obj_ids`` field; see the class docstring).
            data_sample: the frame's ``DetDataSample`` (metainfo such as ``ori_shape``; it may carry
                the prompts instead); default: ``ori_shape`` = the frame size.

        Returns:
            ``pred_instances`` of every tracked object (ids in ``instances_id``), at ``ori_shape``.
            Routed as mode ``'vos'`` (number of frames = frames streamed so far).
        """
        stream = self.stream
        if frame.dim() != 3 or frame.shape[0] != 3:
            raise ValueError(f'RapSAM.track_frame: frame must be an image [3, H, W], got '
                             f'{tuple(frame.shape)}')
        sample = data_sample if data_sample is not None else DetDataSample()
        h, w = frame.shape[-2:]
        for key, default in (('img_shape', (h, w)), ('ori_shape', (h, w)), ('scale_factor', (1.0, 1.0))):
            if key not in sample.metainfo:
                sample.set_metainfo({key: default})
        if prompts is not None:
            if 'prompts' in sample:
                raise ValueError('RapSAM.track_frame: prompts given both as argument and in '
                                 'data_sample.prompts')
            sample.prompts = prompts
        with torch.no_grad():
            inputs, sample = self._preprocess_frame(frame, sample)
            decision = self._route([[sample]], 1, self._stream_frames + 1, mode='vos')
            if not decision.use_memory:
                raise ValueError("RapSAM.track_frame: the task_router's 'vos' rule must turn the "
                                 'memory on (use_memory=True)')
            result = self._track(stream, inputs, sample, self._stream_frames, decision, rescale=True)
        self._stream_frames += 1
        return result

    def remove_object(self, obj_id: Hashable) -> None:
        """Stop tracking an object of the current ``track_frame`` video."""
        self.stream.remove_object(obj_id)

    def _preprocess_frame(self, frame: torch.Tensor, sample: DetDataSample
                          ) -> Tuple[torch.Tensor, DetDataSample]:
        """One raw frame -> normalised, padded ``[1, 3, H', W']`` and its sample, through the
        model's (image or video) data preprocessor."""
        if isinstance(self.data_preprocessor, TrackDataPreprocessor):
            track = TrackDataSample()
            track.video_data_samples = [sample]
            data = self.data_preprocessor(dict(inputs=[frame[None]], data_samples=[track]), False)
            return data['inputs'][:, 0], data['data_samples'][0].video_data_samples[0]
        data = self.data_preprocessor(dict(inputs=[frame], data_samples=[sample]), False)
        return data['inputs'], data['data_samples'][0]

    def _predict_stream(self, clip_inputs: torch.Tensor, clip: List[DetDataSample],
                        decision: RouteDecision, rescale: bool) -> None:
        """One clip ``[T, 3, H, W]`` through the streaming path, frame by frame, fresh memory."""
        tracker = StreamingTracker(self._new_memory())
        self._reset_backbone()
        for t, frame in enumerate(clip):
            frame.pred_instances = self._track(tracker, clip_inputs[t:t + 1], frame, t, decision,
                                               rescale)

    def _track(self, tracker: StreamingTracker, inputs: torch.Tensor, sample: DetDataSample,
               frame_id: int, decision: RouteDecision, rescale: bool) -> InstanceData:
        """One preprocessed frame ``[1, 3, H, W]`` of a stream -> its ``pred_instances``."""
        input_hw = tuple(inputs.shape[-2:])
        prompted = _has_prompts(sample)
        if not prompted and not tracker.object_ids:  # nothing to follow yet: skip the frame
            return _empty_instances(sample, rescale, inputs.device)
        feat = self._clip_feats(inputs, video=True, use_pruner=decision.use_pruner)
        tokens, ids = None, []
        if prompted:
            tokens, _ = self._encode_prompts([[sample]], feat, input_hw)
            ids = _prompt_object_ids(sample, tracker)
        ids, out = tracker.step(self.panoptic_head, feat, frame_id, tokens, ids,
                                decision.num_stages, self.mask_refiner)
        final = out.final
        return _prompt_instances(final.prm_mask[:, 0], final.prm_cls,
                                 torch.tensor(ids, dtype=torch.long, device=inputs.device), sample,
                                 input_hw, rescale)


def _has_prompts(sample: DetDataSample) -> bool:
    return 'prompts' in sample and len(sample.prompts) > 0


def _first_prompted(clip: List[DetDataSample]) -> Optional[int]:
    return next((i for i, f in enumerate(clip) if _has_prompts(f)), None)


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


def _prompt_object_ids(sample: DetDataSample, tracker: StreamingTracker) -> List[int]:
    """Object id of each prompt row: ``prompts.obj_ids``, else the ground-truth instance ids the
    prompts were drawn from (``gt_instances.instances_ids[gt_ids]``: DAVIS ids), else new ids."""
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
        start = tracker.next_free_id()
        ids = list(range(start, start + len(p)))
    if not all(isinstance(i, int) for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f'{where}: prompt object ids must be distinct ints, got {ids}')
    return ids


def _prompt_instances(logits: torch.Tensor, cls: torch.Tensor, obj_ids: torch.Tensor,
                      sample: DetDataSample, input_hw: tuple, rescale: bool) -> InstanceData:
    """Per-object mask logits ``[N, h, w]`` and class logits ``[N, K+1]`` -> ``pred_instances``."""
    scores, labels = cls[:, :-1].softmax(-1).max(-1)
    logits = _to_output_res(logits, sample, input_hw, rescale)
    return InstanceData(mask_logits=logits, masks=logits > 0, labels=labels, scores=scores,
                        instances_id=obj_ids)


def _empty_instances(sample: DetDataSample, rescale: bool, device: torch.device) -> InstanceData:
    h, w = (sample.ori_shape if rescale else sample.img_shape)[:2]
    return InstanceData(mask_logits=torch.zeros(0, h, w, device=device),
                        masks=torch.zeros(0, h, w, dtype=torch.bool, device=device),
                        labels=torch.zeros(0, dtype=torch.long, device=device),
                        scores=torch.zeros(0, device=device),
                        instances_id=torch.zeros(0, dtype=torch.long, device=device))


def _mask_tensor(masks, device: torch.device) -> torch.Tensor:
    if isinstance(masks, BitmapMasks):
        return masks.to_tensor(dtype=torch.bool, device=device)
    return torch.as_tensor(masks, device=device).bool()


def _to_output_res(logits: torch.Tensor, sample: DetDataSample, input_hw: tuple, rescale: bool
                   ) -> torch.Tensor:
    """Mask logits ``[N, h, w]`` at feature stride -> the image without padding (original size when
    ``rescale``)."""
    up = F.interpolate(logits[None], size=input_hw, mode='bilinear', align_corners=False)
    h, w = sample.img_shape[:2]
    up = up[..., :h, :w]
    if rescale:
        up = F.interpolate(up, size=tuple(sample.ori_shape[:2]), mode='bilinear', align_corners=False)
    return up[0]
