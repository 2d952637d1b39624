"""Per-video state of FastSAM2's streaming VOS path: the tracked objects and their memory."""
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg.models.utils import MemoryReadout, RegionState, StreamingMemory

from ..heads.prompt_mask_refiner import DensePrompts
from ..heads.rapsam_head import HeadOutput, RapSAMVideoHead
from ..heads.sam_prompt_encoder import PromptTokens


def mask_confidence(mask_logits: Tensor) -> Tensor:
    """``[K, h, w]`` logits -> ``[K]`` mean foreground probability inside each predicted mask
    (0 for an empty mask): the score of the memory's key-frame rule."""
    probs = mask_logits.sigmoid()
    fg = (probs > 0.5).to(probs.dtype)
    return (probs * fg).flatten(1).sum(1) / fg.flatten(1).sum(1).clamp(min=1)


class StreamingTracker:
    """Follow prompted objects through a video one frame at a time, with bounded work per frame.

    Per object it keeps the query its latest prompt gave and, in a ``StreamingMemory``, its
    prompted frames, key frames and last frames: the object's class embedding on that frame
    (normalised; the CLIP text space, so the memory's language guard compares it with the object's
    text prompt) and its mask logits. ``step`` on frame t:

    1. tracked objects: query = ``head.read_memory(prompt query, memory.fetch(t))``, initial mask =
       the newest remembered mask (mask propagation),
       moved onto frame t by the head's ``mask_warp``, if any (from the previous step's frame);
    2. objects prompted on frame t (new ids, or re-prompted ones): queries from their prompt tokens;
    3. the head decodes all of them on frame t's feature (prompt queries only); its prompt refiner,
       if any, corrects every mask per pixel from the object's dense prompts: the propagated mask
       for a tracked object, the given mask prompt and clicks for a prompted one;
    4. the memory takes the result: ``add_object`` for prompted objects, ``update`` for the
       others (the language guard may reject it, and then that frame neither feeds the next one
       nor enters the memory). A mask prompt given alone is the object's mask on that frame (a
       VOS reference mask): the memory stores it as given. A mask prompt with clicks or a box is
       the mask they correct (SAM2's previous-mask input: the tracked mask of a corrected frame,
       or the previous prediction in training's correction rounds): the memory stores the
       decoded, corrected mask.

    The memory is bounded and every step touches only its entries, so memory and compute per
    frame do not grow with the length of the video.

    ``frame_id`` is the memory's clock (entry ages, key-frame spacing, what ``fetch`` returns):
    any strictly increasing step count, so a caller walking a video backwards, or feeding a
    prompted frame before the ones it propagates to, counts its steps rather than frame indices.

    The tracker is the whole per-video state, including the backbone token pruner's cached scores
    (``pruner_cache``, swapped in and out by ``RapSAM.track_step``) and the regional encoder's
    feature map (``region_state``): one model can follow several videos at once, each with its own
    tracker.
    """

    def __init__(self, memory: StreamingMemory) -> None:
        self.memory = memory
        self.queries: Dict[Hashable, Tensor] = {}  # obj_id -> [C] prompt query
        self.last_frame: Optional[int] = None
        self.pruner_cache: Tuple[Optional[Tensor], int] = (None, 0)  # TokenPruner.video_cache
        self.region_state: Optional[RegionState] = None  # RegionalFeatures' kept feature map
        self.warp_keys: Optional[Tensor] = None  # the last frame's LocalMaskWarp keys [D, h, w]

    @property
    def object_ids(self) -> List[Hashable]:
        """Tracked object ids, in the order they were first prompted."""
        return list(self.queries)

    def latest_masks(self) -> Optional[Tensor]:
        """The newest remembered mask logits of every tracked object ``[K, h, w]`` (None without
        objects): where the objects are, to the best of the tracker's knowledge."""
        if not self.queries:
            return None
        readout = self.memory.fetch(self.last_frame)
        return _newest_masks([readout[i] for i in self.queries])

    def next_free_id(self) -> int:
        """The smallest int id above every tracked int id (ids start at 1, like DAVIS)."""
        return max((i for i in self.queries if isinstance(i, int)), default=0) + 1

    def remove_object(self, obj_id: Hashable) -> None:
        """Stop tracking an object (it left the scene or the user deleted it)."""
        if obj_id not in self.queries:
            raise KeyError(f'StreamingTracker: no object {obj_id!r}; tracked: {self.object_ids}')
        del self.queries[obj_id]
        self.memory.remove_object(obj_id)

    def step(self, head: RapSAMVideoHead, feat: Tensor, frame_id: int,
             prompts: Optional[PromptTokens] = None, prompt_ids: Sequence[Hashable] = (),
             num_stages: Optional[int] = None, mask_refiner: Optional[nn.Module] = None,
             track_others: bool = True, image: Optional[Tensor] = None
             ) -> Tuple[List[Hashable], HeadOutput]:
        """Decode one frame.

        Args:
            head: the decoder head (with a ``memory_reader``).
            feat: the frame's neck feature ``[1, C, 1, h, w]``.
            frame_id: the step index; strictly increasing over the stream (see the class
                docstring).
            prompts: prompts given on this frame (sample 0, frame 0), one row per object, or None.
            prompt_ids: the object id of each prompt row.
            num_stages / mask_refiner: passed to ``head.decode``.
            track_others: False decodes only the prompted objects and allows ``frame_id`` to
                repeat the last step: a prompt on the frame just tracked (its prompted memory
                entry replaces the one an earlier prompt of that step left).
            image: the preprocessed frame ``[1, 3, H, W]`` (needed by the head's ``mask_warp``).

        Returns:
            The object ids (tracked ones first, then the prompted ones) and the head output whose
            prompt entries are those objects, in that order.
        """
        if feat.dim() != 5 or feat.shape[0] != 1 or feat.shape[2] != 1:
            raise ValueError(f'StreamingTracker: feat must be one frame [1, C, 1, h, w], got '
                             f'{tuple(feat.shape)}')
        prompt_ids = list(prompt_ids)
        num_new = 0 if prompts is None else prompts.num_prompts
        if self.last_frame is not None and (frame_id < self.last_frame or (
                frame_id == self.last_frame and track_others)):
            raise ValueError(f'StreamingTracker: frame {frame_id} does not come after frame '
                             f'{self.last_frame}; frames must arrive in order (only a re-prompt, '
                             'track_others=False, may repeat the last one)')
        if not track_others and not num_new:
            raise ValueError('StreamingTracker: track_others=False decodes the prompted objects '
                             'only, but no prompt was given')
        if len(prompt_ids) != num_new or len(set(prompt_ids)) != num_new:
            raise ValueError(f'StreamingTracker: {num_new} prompt rows need as many distinct object '
                             f'ids, got {prompt_ids}')
        # re-prompted objects restart from their prompt
        tracked = [i for i in self.queries if i not in prompt_ids] if track_others else []
        if not tracked and not num_new:
            raise ValueError(f'StreamingTracker: frame {frame_id} has no tracked object and no prompt')

        queries, masks, dense = [], [], []
        keys = None
        if head.mask_warp is not None:
            if image is None:
                raise ValueError("StreamingTracker: the head's mask_warp needs the frame's image")
            keys = head.mask_warp.keys(feat[:, :, 0], image)[0]
        if tracked:
            q, m = self._read_memory(head, tracked, frame_id)
            if keys is not None and self.warp_keys is not None \
                    and self.warp_keys.shape == keys.shape:
                m = torch.logit(head.mask_warp(self.warp_keys, keys, m.sigmoid()), eps=1e-4)
            queries.append(q)
            masks.append(m)
            dense.append(DensePrompts.from_masks(m))
        if num_new:
            new_q, new_m, _ = head.init_prompt_queries(prompts, feat)
            queries.append(new_q[0])
            masks.append(new_m[0, :, 0])
            dense.append(DensePrompts.from_tokens(prompts))
        query = torch.cat(queries)[None]
        valid = torch.ones(query.shape[:2], dtype=torch.bool, device=query.device)
        out = head.decode(feat, None, (query, torch.cat(masks)[None, :, None], valid), num_stages,
                          mask_refiner, dense_prompts=DensePrompts.cat(dense))

        final = out.final
        embeds = F.normalize(final.prm_cls_embed, dim=-1)
        logits = final.prm_mask[:, 0]
        if num_new:  # a mask prompt alone is remembered as given (class docstring, step 4)
            given = (prompts.mask_valid & ~prompts.point_valid.any(1) & ~prompts.box_valid).tolist()
        for j, obj_id in enumerate(prompt_ids):
            row = len(tracked) + j
            self.queries[obj_id] = new_q[0, j]
            mask = prompts.mask_logits[j] if given[j] else logits[row]
            text = prompts.text_embed[j] if prompts.text_valid[j] else None
            self.memory.add_object(obj_id, frame_id, embeds[row], mask, text_embed=text)
        if tracked:
            scores = mask_confidence(logits[:len(tracked)]).tolist()
            self.memory.update(frame_id, {i: embeds[r] for r, i in enumerate(tracked)},
                               {i: logits[r] for r, i in enumerate(tracked)},
                               {i: scores[r] for r, i in enumerate(tracked)})
        self.last_frame = frame_id
        self.warp_keys = keys
        return tracked + prompt_ids, out

    def _read_memory(self, head: RapSAMVideoHead, obj_ids: List[Hashable], frame_id: int
                     ) -> Tuple[Tensor, Tensor]:
        """Memory-conditioned queries ``[K, C]`` and propagated masks ``[K, h, w]``."""
        readout = self.memory.fetch(frame_id)
        entries = [readout[i] for i in obj_ids]  # every tracked object holds its prompted frame
        base = torch.stack([self.queries[i] for i in obj_ids])
        m_max = max(len(r.frame_ids) for r in entries)
        embeds = base.new_zeros(len(obj_ids), m_max, entries[0].embeds.shape[-1])
        valid = torch.zeros(len(obj_ids), m_max, dtype=torch.bool, device=base.device)
        age = torch.zeros(len(obj_ids), m_max, dtype=torch.long, device=base.device)
        for j, r in enumerate(entries):
            n = len(r.frame_ids)
            embeds[j, :n], valid[j, :n], age[j, :n] = r.embeds, True, frame_id - r.frame_ids
        return head.read_memory(base, embeds, valid, age), _newest_masks(entries)


def _newest_masks(entries: List[MemoryReadout]) -> Tensor:
    """Each object's most recent remembered mask logits, stacked ``[K, h, w]``."""
    return torch.stack([r.masks[r.frame_ids.argmax()] for r in entries])
