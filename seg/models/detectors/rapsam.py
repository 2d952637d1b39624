"""RapSAM: one model for panoptic, interactive (points / boxes / masks / texts) and video segmentation."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.detectors import BaseDetector
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from seg.registry import MODELS
from ..heads.rapsam_head import HeadOutput
from ..heads.sam_prompt_encoder import PromptTokens

SampleList = List[Union[DetDataSample, TrackDataSample]]
CLASS_TEMPLATES = ('a photo of a {}.', 'a photo of the {}.', 'a photo of a small {}.',
                   'a photo of a large {}.')


@MODELS.register_module()
class RapSAM(BaseDetector):
    """Backbone -> YOSO neck -> RapSAM head, for images ``[B, 3, H, W]`` (``DetDataSample``) and clips
    ``[B, T, 3, H, W]`` (``TrackDataSample``).

    A sample whose (first prompted) frame carries ``prompts`` is decoded by its prompt queries
    (interactive / VOS); otherwise the object queries give panoptic (images) or per-clip instance
    (video) results. Training runs both: Hungarian-matched object queries and prompt queries
    supervised by the instance each prompt was drawn from.

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
        self.test_cfg = test_cfg or {}
        self.train_cfg = train_cfg or {}
        fusion = dict(type='mmdet.MaskFormerFusionHead', num_things_classes=head.num_things_classes,
                      num_stuff_classes=head.num_stuff_classes, test_cfg=self.test_cfg)
        fusion.update(panoptic_fusion_head or {})
        self.panoptic_fusion_head = MODELS.build(fusion)
        self._class_embeds_ready = False

    # ------------------------------------------------------------------ features
    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` -> neck feature ``[N, C, H/4, W/4]``."""
        return self.neck(self.backbone(inputs))

    def _clip_feats(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` or ``[B, T, 3, H, W]`` -> ``[B, C, T, h, w]``."""
        if inputs.dim() == 4:
            return self.extract_feat(inputs)[:, :, None]
        if inputs.dim() != 5:
            raise ValueError(f'inputs must be [B, 3, H, W] or [B, T, 3, H, W], got {tuple(inputs.shape)}')
        b, t = inputs.shape[:2]
        feat = self.extract_feat(inputs.flatten(0, 1))
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
            t = next((i for i, f in enumerate(clip) if 'prompts' in f and len(f.prompts) > 0), None)
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
        out = self.panoptic_head(feats, tokens, run_objects=True)
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
        return self.panoptic_head.loss(out, targets, prompt_targets, tokens)

    # ------------------------------------------------------------------ inference
    def predict(self, batch_inputs: torch.Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        self._ensure_class_embeds()
        feats = self._clip_feats(batch_inputs)
        frames = self._frames(batch_data_samples)
        tokens, frame_ids = self._encode_prompts(frames, feats, tuple(batch_inputs.shape[-2:]))
        prompted = [t is not None for t in frame_ids]
        out = self.panoptic_head(feats, tokens, run_objects=not all(prompted))
        final = out.final
        input_hw = tuple(batch_inputs.shape[-2:])
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
        scores, labels = cls[:, :-1].softmax(-1).max(-1)
        obj_ids = torch.arange(1, len(masks) + 1, device=masks.device)
        for t, frame in enumerate(clip):
            logits = _to_output_res(masks[:, t], frame, input_hw, rescale)
            res = InstanceData(mask_logits=logits, masks=logits > 0, labels=labels,
                               scores=scores, instances_id=obj_ids)
            frame.pred_instances = res

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
        feats = self._clip_feats(batch_inputs)
        tokens = None
        if batch_data_samples is not None:
            tokens, _ = self._encode_prompts(self._frames(batch_data_samples), feats,
                                             tuple(batch_inputs.shape[-2:]))
        return self.panoptic_head(feats, tokens)


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
