"""Bounded, language-guided streaming memory of tracked objects for video segmentation."""
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Hashable, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg.registry import MODELS


@dataclass
class MemoryEntry:
    """One remembered frame of one object."""
    frame_id: int
    embed: Tensor  # [C]
    mask: Tensor  # [H, W]
    prompted: bool = False


@dataclass
class MemoryReadout:
    """What the head attends to for one object: M entries, long memory first, oldest first."""
    embeds: Tensor  # [M, C]
    masks: Tensor  # [M, H, W]
    frame_ids: Tensor  # long [M]


@dataclass
class _ObjectMemory:
    long: List[MemoryEntry]
    short: Deque[MemoryEntry]
    text_embed: Optional[Tensor]
    last_key_frame: int
    mask_shape: torch.Size
    embed_dim: int


@MODELS.register_module()
class StreamingMemory(nn.Module):
    """Per-object long memory (key frames) + short memory (last frames), bounded in size.

    - Long memory holds the prompted frames (``add_object``) and key frames: an accepted update
      whose score is at least ``key_frame_score_thr`` and that comes at least
      ``key_frame_interval`` frames after the object's last key frame. Prompted frames count
      towards ``long_capacity``. When long memory is full, a key frame makes room (the oldest);
      a new prompted frame with no key frame left to evict replaces the oldest prompted frame
      but the object's first one (its reference; with ``long_capacity=1`` the newest prompt
      replaces it). So an object may be prompted on any number of frames: it remembers the
      first and the ``long_capacity - 1`` newest (SAM2 keeps every conditioning frame; a
      bounded memory keeps the per-frame cost constant instead).
    - Short memory holds the last ``short_capacity`` accepted updates (FIFO).
    - Language guard: an object added with a ``text_embed`` rejects every update whose embedding has a
      cosine similarity below ``text_sim_thr`` to it (drift to another object); rejected updates are
      not stored.

    Per object at most ``long_capacity + short_capacity`` entries are held and every call does a
    constant amount of work per object, however long the video. No parameters: an ``nn.Module`` so
    that configs build it by ``type=`` and a detector can hold it. Entries are stored detached
    unless ``detach=False`` (backpropagation through time inside a training clip).

    Args:
        long_capacity: max long-memory entries per object (prompted frames included; see
            above for which prompted frames stay when there are more).
        short_capacity: max short-memory entries per object.
        key_frame_interval: min frames between two key frames of an object.
        key_frame_score_thr: min update score for a key frame.
        text_sim_thr: min cosine similarity to the object's text embedding for an update.
        detach: store detached copies of embeddings and masks.
    """

    def __init__(self,
                 long_capacity: int = 4,
                 short_capacity: int = 4,
                 key_frame_interval: int = 5,
                 key_frame_score_thr: float = 0.8,
                 text_sim_thr: float = 0.2,
                 detach: bool = True) -> None:
        super().__init__()
        if long_capacity < 1 or short_capacity < 0 or key_frame_interval < 1:
            raise ValueError(f'StreamingMemory: need long_capacity >= 1, short_capacity >= 0 and '
                             f'key_frame_interval >= 1, got {long_capacity}, {short_capacity}, '
                             f'{key_frame_interval}')
        if not -1.0 <= text_sim_thr <= 1.0:
            raise ValueError(f'StreamingMemory: text_sim_thr is a cosine similarity in [-1, 1], got '
                             f'{text_sim_thr}')
        self.long_capacity = long_capacity
        self.short_capacity = short_capacity
        self.key_frame_interval = key_frame_interval
        self.key_frame_score_thr = key_frame_score_thr
        self.text_sim_thr = text_sim_thr
        self.detach = detach
        self._objects: Dict[Hashable, _ObjectMemory] = {}
        self._last_frame: Optional[int] = None

    @property
    def object_ids(self) -> List[Hashable]:
        return list(self._objects)

    def reset(self) -> None:
        """Forget every object (call at the start of every video)."""
        self._objects.clear()
        self._last_frame = None

    def add_object(self,
                   obj_id: Hashable,
                   frame_id: int,
                   embed: Tensor,
                   mask: Tensor,
                   text_embed: Optional[Tensor] = None) -> None:
        """Store a prompted frame of an object (new, or re-prompted) in its long memory.

        A prompt on a frame that already has a prompted entry replaces it; with the long memory
        full of prompted frames, the oldest one but the first makes room (class docstring).
        ``text_embed`` [C] (same space as ``embed``) switches on the language guard; a later call
        without it keeps the old.
        """
        self._check_entry(obj_id, embed, mask)
        if text_embed is not None and text_embed.shape != embed.shape:
            raise ValueError(f'StreamingMemory: text_embed of object {obj_id!r} must be projected to '
                             f'the embedding space {tuple(embed.shape)}, got {tuple(text_embed.shape)}')
        obj = self._objects.get(obj_id)
        if obj is None:
            obj = _ObjectMemory(long=[], short=deque(maxlen=self.short_capacity), text_embed=None,
                                last_key_frame=frame_id, mask_shape=mask.shape,
                                embed_dim=embed.shape[0])
        self._check_same_shapes(obj_id, obj, embed, mask)
        self._objects[obj_id] = obj
        obj.long = [e for e in obj.long if not (e.prompted and e.frame_id == frame_id)]
        if text_embed is not None:
            obj.text_embed = self._store(text_embed)
        if not self._make_room(obj):  # every slot holds a prompted frame
            prompted = [i for i, e in enumerate(obj.long) if e.prompted]
            del obj.long[prompted[1] if len(prompted) > 1 else prompted[0]]
        obj.long.append(MemoryEntry(frame_id, self._store(embed), self._store(mask), prompted=True))
        obj.long.sort(key=lambda e: e.frame_id)
        obj.last_key_frame = max(obj.last_key_frame, frame_id)

    def remove_object(self, obj_id: Hashable) -> None:
        """Forget an object (it left the scene or the user deleted it)."""
        if obj_id not in self._objects:
            raise KeyError(f'StreamingMemory: no object {obj_id!r}; known: {self.object_ids}')
        del self._objects[obj_id]

    def update(self,
               frame_id: int,
               instance_embed: Dict[Hashable, Tensor],
               mask: Dict[Hashable, Tensor],
               scores: Optional[Dict[Hashable, float]] = None) -> Dict[Hashable, bool]:
        """Offer the current frame's prediction of some objects to the memory.

        Args:
            frame_id: non-decreasing over the stream.
            instance_embed: obj_id -> [C] embedding of the object on this frame.
            mask: obj_id -> [H, W] mask (logits or probabilities, as the caller keeps them).
            scores: obj_id -> confidence in [0, 1] for the key-frame rule; None counts as confident.

        Returns:
            obj_id -> whether the update was accepted (False: rejected by the language guard).
        """
        if self._last_frame is not None and frame_id < self._last_frame:
            raise ValueError(f'StreamingMemory: frame_id {frame_id} is older than the last update '
                             f'{self._last_frame}; frames must arrive in order')
        if set(instance_embed) != set(mask):
            raise ValueError(f'StreamingMemory: instance_embed and mask name different objects: '
                             f'{sorted(map(str, instance_embed))} vs {sorted(map(str, mask))}')
        unknown = [o for o in instance_embed if o not in self._objects]
        if unknown:
            raise KeyError(f'StreamingMemory: update for unknown object(s) {unknown}; add them with '
                           f'add_object first')
        if scores is not None and not set(instance_embed) <= set(scores):
            raise ValueError(f'StreamingMemory: scores miss object(s) '
                             f'{[o for o in instance_embed if o not in scores]}')
        for obj_id, emb in instance_embed.items():  # all checks before any change
            self._check_entry(obj_id, emb, mask[obj_id])
            self._check_same_shapes(obj_id, self._objects[obj_id], emb, mask[obj_id])
        self._last_frame = frame_id
        accepted = {}
        for obj_id, emb in instance_embed.items():
            msk = mask[obj_id]
            obj = self._objects[obj_id]
            ok = obj.text_embed is None or bool(
                F.cosine_similarity(emb.detach(), obj.text_embed, dim=0) >= self.text_sim_thr)
            accepted[obj_id] = ok
            if not ok:
                continue
            entry = MemoryEntry(frame_id, self._store(emb), self._store(msk))
            score = 1.0 if scores is None else float(scores[obj_id])
            if (score >= self.key_frame_score_thr
                    and frame_id - obj.last_key_frame >= self.key_frame_interval
                    and self._make_room(obj)):
                obj.long.append(entry)
                obj.last_key_frame = frame_id
            if self.short_capacity:
                obj.short.append(entry)
        return accepted

    def fetch(self, frame_id: int) -> Dict[Hashable, MemoryReadout]:
        """The memory each object brings to ``frame_id``: its entries from frames <= frame_id.

        Objects with no such entry are left out.
        """
        out = {}
        for obj_id, obj in self._objects.items():
            # a key frame sits in both memories: list it once
            in_long = {id(e) for e in obj.long}
            entries = [e for e in (*obj.long, *(e for e in obj.short if id(e) not in in_long))
                       if e.frame_id <= frame_id]
            if not entries:
                continue
            out[obj_id] = MemoryReadout(
                embeds=torch.stack([e.embed for e in entries]),
                masks=torch.stack([e.mask for e in entries]),
                frame_ids=torch.tensor([e.frame_id for e in entries], dtype=torch.long,
                                       device=entries[0].embed.device))
        return out

    def num_entries(self, obj_id: Hashable) -> Dict[str, int]:
        """Entries held for an object: ``dict(long=..., short=...)``."""
        obj = self._objects[obj_id]
        return dict(long=len(obj.long), short=len(obj.short))

    def _make_room(self, obj: _ObjectMemory) -> bool:
        """Free a long-memory slot if full by evicting the oldest key frame; False if impossible."""
        if len(obj.long) < self.long_capacity:
            return True
        for i, e in enumerate(obj.long):
            if not e.prompted:
                del obj.long[i]
                return True
        return False

    def _store(self, x: Tensor) -> Tensor:
        return x.detach().clone() if self.detach else x

    @staticmethod
    def _check_entry(obj_id: Hashable, embed: Tensor, mask: Tensor) -> None:
        if embed.dim() != 1:
            raise ValueError(f'StreamingMemory: embedding of object {obj_id!r} must be [C], got '
                             f'{tuple(embed.shape)}')
        if mask.dim() != 2:
            raise ValueError(f'StreamingMemory: mask of object {obj_id!r} must be [H, W], got '
                             f'{tuple(mask.shape)}')

    @staticmethod
    def _check_same_shapes(obj_id: Hashable, obj: _ObjectMemory, embed: Tensor, mask: Tensor) -> None:
        if embed.shape[0] != obj.embed_dim or mask.shape != obj.mask_shape:
            raise ValueError(f'StreamingMemory: object {obj_id!r} was stored with embeddings '
                             f'[{obj.embed_dim}] and masks {tuple(obj.mask_shape)}, got '
                             f'{tuple(embed.shape)} and {tuple(mask.shape)}')
