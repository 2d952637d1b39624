"""Online SAM2 -> student distillation losses: projected features, mask logits, prompt maps."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg.registry import MODELS

_PAIR_KEYS = {'student', 'teacher', 'student_channels', 'teacher_channels', 'weight'}


@MODELS.register_module()
class SAM2DistillLoss(nn.Module):
    """Distil a frozen SAM2 teacher into the student: features, prompted mask logits, prompt maps.

    **Features** (``feature_loss``). Each supervised pair ``p`` links a student feature map
    ``f_s`` (``student_feats[p.student]``, e.g. the backbone's ``distill_feats['stage2']`` or the
    neck output) to a teacher level ``f_t`` (``teacher_feats[p.teacher]``, a ``TeacherOutput.feats``
    entry). ``W_p`` is a learned 1x1 conv from teacher to student channels and ``A`` the bilinear
    resize (``align_corners=False``) of the teacher map to ``f_s``'s spatial size (the teacher
    saw the whole padded input stretched to its square, so resizing realigns it)::

        L_visual = loss_weight * sum_p weight_p * (alpha * mean((f_s - W_p A f_t)^2)
                                                   + beta * mean_x (1 - cos_c(f_s, W_p A f_t)(x)))

    the MSE averaged over batch, channels and positions, the cosine taken over channels at each
    position ``x`` and averaged over batch and positions. Several pairs give the multi-level
    (intermediate backbone level) supervision. The 1x1 conv and the bilinear resize commute
    exactly (both are linear, and the bilinear weights of every output pixel sum to one, so the
    conv's bias passes through unchanged), so the conv runs on whichever grid is smaller: it is the
    expensive step (``C_t * C_s`` per pixel against ~4 taps per channel for the resize).

    Features must be image-shaped ``[N, C, h, w]``, with the same ``N`` (and order) for student and
    teacher; the detector flattens clips ``[B, T, ...]`` to ``[B * T, ...]`` before calling.

    **Masks** (``mask_loss``), one row per prompt, the student's and the teacher's answer to the
    same prompt (teacher logits resized bilinearly to the student's mask grid when it differs),
    over the valid rows ``V`` and the ``M`` pixels of the grid::

        L_mask = loss_weight * gamma * mean_{r in V, x} BCE(s_r(x), sigmoid(t_r(x)))

    **Prompt distribution.** For each prompt row ``r`` the prompt-conditioned distribution is the
    spatial distribution of where the prompted object is, a softmax over the ``M`` pixels of the
    mask grid::

        p_r(x) = exp(logit_r(x) / temperature) / sum_x' exp(logit_r(x') / temperature)

        L_prompt = loss_weight * delta * mean_{r in V} KL(p_r^s || p_r^t),
        KL(p^s || p^t) = sum_x p^s(x) (log p^s(x) - log p^t(x))

    (computed from ``log_softmax``; no ``temperature^2`` factor). It complements the per-pixel BCE:
    it is invariant to a shift of all of a row's logits, so it matches the *shape and location* of
    the response to the prompt regardless of its overall confidence. KL(student || teacher) is the
    mode-seeking direction: the student is penalised most for putting mass where the teacher has
    none.

    Teacher inputs are detached (and moved to the student's device), the loss arithmetic runs in
    fp32. Every returned ``loss_*`` is scaled by ``loss_weight``; the logging values
    (``distill_cos``, ``distill_mask_iou``) are detached and their names avoid 'loss', since
    mmengine sums every key containing it.

    Args:
        pairs: ``dict(student=str, teacher=int, student_channels=int, teacher_channels=int,
            weight=1.0)`` per supervised feature pair; may be empty when only masks are distilled.
        alpha, beta: weights of the feature MSE and the (1 - cosine) terms.
        gamma: weight of the mask BCE.
        delta: weight of the prompt-distribution KL.
        loss_weight: scales every loss (``tools/train_fast_sam2.py --distill-weight``).
        temperature: of the prompt-distribution softmax.
    """

    def __init__(self,
                 pairs: Sequence[dict],
                 alpha: float = 1.0,
                 beta: float = 0.5,
                 gamma: float = 1.0,
                 delta: float = 0.2,
                 loss_weight: float = 1.0,
                 temperature: float = 1.0) -> None:
        super().__init__()
        for name, value in dict(alpha=alpha, beta=beta, gamma=gamma, delta=delta,
                                loss_weight=loss_weight).items():
            if value < 0:
                raise ValueError(f'SAM2DistillLoss: {name} must be >= 0, got {value}')
        if temperature <= 0:
            raise ValueError(f'SAM2DistillLoss: temperature must be > 0, got {temperature}')
        self.pairs = tuple(self._check_pair_cfg(i, p) for i, p in enumerate(pairs))
        self.alpha, self.beta, self.gamma, self.delta = alpha, beta, gamma, delta
        self.loss_weight = loss_weight
        self.temperature = temperature
        self.projections = nn.ModuleList(
            nn.Conv2d(p['teacher_channels'], p['student_channels'], 1) for p in self.pairs)
        for proj in self.projections:
            # (semi-)orthogonal: full rank and norm-preserving from the first step, unlike a small
            # random init whose projected target starts near zero
            nn.init.orthogonal_(proj.weight)
            nn.init.zeros_(proj.bias)

    @staticmethod
    def _check_pair_cfg(index: int, pair: dict) -> dict:
        if not isinstance(pair, dict):
            raise TypeError(f'SAM2DistillLoss: pairs[{index}] must be a dict, got {pair!r}')
        missing = _PAIR_KEYS - {'weight'} - pair.keys()
        unknown = pair.keys() - _PAIR_KEYS
        if missing or unknown:
            raise ValueError(f'SAM2DistillLoss: pairs[{index}] = {pair}: missing keys '
                             f'{sorted(missing)}, unknown keys {sorted(unknown)}; expected '
                             f'{sorted(_PAIR_KEYS)} (weight optional)')
        out = dict(pair, weight=float(pair.get('weight', 1.0)))
        if not isinstance(out['student'], str):
            raise TypeError(f'SAM2DistillLoss: pairs[{index}].student must be a feature name '
                            f'(str), got {out["student"]!r}')
        for key in ('teacher', 'student_channels', 'teacher_channels'):
            if not isinstance(out[key], int) or out[key] < (0 if key == 'teacher' else 1):
                raise ValueError(f'SAM2DistillLoss: pairs[{index}].{key} must be a '
                                 f'{"non-negative" if key == "teacher" else "positive"} int, '
                                 f'got {out[key]!r}')
        if out['weight'] < 0:
            raise ValueError(f'SAM2DistillLoss: pairs[{index}].weight must be >= 0, '
                             f'got {out["weight"]}')
        return out

    @staticmethod
    def _pair_name(pair: dict) -> str:
        return f'student {pair["student"]!r} <- teacher level {pair["teacher"]}'

    def _project(self, proj: nn.Conv2d, f_t: Tensor, size: Tuple[int, int]) -> Tensor:
        """``W A f_t``: resize and 1x1 conv (they commute), the conv on the smaller grid."""
        if tuple(f_t.shape[-2:]) == size:
            return proj(f_t)
        if size[0] * size[1] <= f_t.shape[-2] * f_t.shape[-1]:
            return proj(F.interpolate(f_t, size=size, mode='bilinear', align_corners=False))
        return F.interpolate(proj(f_t), size=size, mode='bilinear', align_corners=False)

    def feature_loss(self, student_feats: Dict[str, Tensor],
                     teacher_feats: Sequence[Tensor]) -> Dict[str, Tensor]:
        """``L_visual`` summed over the pairs.

        Args:
            student_feats: name -> ``[N, C_s, h, w]`` (e.g. the backbone's ``distill_feats`` plus
                ``'neck'``); must hold every pair's ``student`` key.
            teacher_feats: ``TeacherOutput.feats``, per level ``[N, C_t, h_t, w_t]``.

        Returns:
            ``loss_distill_feat`` and ``distill_cos`` (detached mean over pairs of the mean cosine
            between ``f_s`` and ``W A f_t``).
        """
        if not self.pairs:
            raise ValueError('SAM2DistillLoss.feature_loss: no feature pairs configured (pairs=[])')
        total: Optional[Tensor] = None
        cosines: List[Tensor] = []
        for pair, proj in zip(self.pairs, self.projections):
            if pair['student'] not in student_feats:
                raise KeyError(f'SAM2DistillLoss: student feature {pair["student"]!r} is missing; '
                               f'available: {sorted(student_feats)}')
            if pair['teacher'] >= len(teacher_feats):
                raise IndexError(f'SAM2DistillLoss ({self._pair_name(pair)}): the teacher returned '
                                 f'only {len(teacher_feats)} feature levels')
            f_s = student_feats[pair['student']]
            f_t = teacher_feats[pair['teacher']]
            if f_s.dim() != 4 or f_t.dim() != 4 or f_s.shape[0] != f_t.shape[0] or \
                    f_s.shape[1] != pair['student_channels'] or \
                    f_t.shape[1] != pair['teacher_channels']:
                raise ValueError(
                    f'SAM2DistillLoss ({self._pair_name(pair)}): expected student '
                    f'[N, {pair["student_channels"]}, h, w] and teacher '
                    f'[N, {pair["teacher_channels"]}, h_t, w_t] with the same N, got student '
                    f'{tuple(f_s.shape)}, teacher {tuple(f_t.shape)}')
            f_t = f_t.detach().to(device=f_s.device, dtype=proj.weight.dtype)
            target = self._project(proj, f_t, tuple(f_s.shape[-2:])).float()
            f_s = f_s.float()
            cos = F.cosine_similarity(f_s, target, dim=1)
            term = pair['weight'] * (self.alpha * F.mse_loss(f_s, target)
                                     + self.beta * (1 - cos).mean())
            total = term if total is None else total + term
            cosines.append(cos.detach().mean())
        return dict(loss_distill_feat=self.loss_weight * total,
                    distill_cos=torch.stack(cosines).mean())

    def mask_loss(self, student_logits: Tensor, teacher_logits: Tensor,
                  valid: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """``L_mask`` and ``L_prompt`` over the valid prompt rows.

        Args:
            student_logits: ``[R, h, w]`` the student's mask logits, one row per prompt.
            teacher_logits: ``[R, h', w']`` the teacher's for the same prompts (``TeacherOutput.
                mask_logits``); resized bilinearly to ``h x w`` when it differs.
            valid: ``[R]`` bool, rows the teacher answered (``TeacherOutput.valid``); None = all.

        Returns:
            ``loss_distill_mask``, ``loss_distill_prompt`` (means over valid rows; zero, still in
            the student's graph so DDP sees every parameter used, when no row is valid) and
            ``distill_mask_iou``: detached mean IoU of the two masks thresholded at logit 0 (an
            empty pair counts as 1). It is left out when no row is valid: the IoU is undefined
            then, and a placeholder 0 or NaN would corrupt the logged running mean.
        """
        if student_logits.dim() != 3 or teacher_logits.dim() != 3 or \
                student_logits.shape[0] != teacher_logits.shape[0]:
            raise ValueError(f'SAM2DistillLoss.mask_loss: logits must be [R, h, w] for the same R '
                             f'prompt rows, got student {tuple(student_logits.shape)}, teacher '
                             f'{tuple(teacher_logits.shape)}')
        num_rows = student_logits.shape[0]
        s, t = student_logits, teacher_logits.detach().to(student_logits.device)
        if valid is not None:
            if valid.dtype != torch.bool or tuple(valid.shape) != (num_rows, ):
                raise ValueError(f'SAM2DistillLoss.mask_loss: valid must be bool [{num_rows}], got '
                                 f'{valid.dtype} {tuple(valid.shape)}')
            valid = valid.to(s.device)
            s, t = s[valid], t[valid]
        if s.shape[0] == 0:
            zero = student_logits.sum() * 0
            return dict(loss_distill_mask=zero, loss_distill_prompt=zero.clone())
        s, t = s.float(), t.float()
        if t.shape[-2:] != s.shape[-2:]:
            t = F.interpolate(t[:, None], size=s.shape[-2:], mode='bilinear',
                              align_corners=False)[:, 0]
        bce = F.binary_cross_entropy_with_logits(s, t.sigmoid())
        log_ps = F.log_softmax(s.flatten(1) / self.temperature, dim=1)
        log_pt = F.log_softmax(t.flatten(1) / self.temperature, dim=1)
        kl = (log_ps.exp() * (log_ps - log_pt)).sum(dim=1).mean()
        with torch.no_grad():
            m_s, m_t = s > 0, t > 0
            inter = (m_s & m_t).flatten(1).sum(1).float()
            union = (m_s | m_t).flatten(1).sum(1).float()
            iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).mean()
        return dict(loss_distill_mask=self.loss_weight * self.gamma * bce,
                    loss_distill_prompt=self.loss_weight * self.delta * kl,
                    distill_mask_iou=iou)
