"""Corrective clicks for SAM-style iterative interaction training, placed by the evaluation's protocol."""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from seg.evaluation.interactive import ClickSimulator
from seg.structures import NEGATIVE, PADDING, POSITIVE

IGNORE = -1  # ground-truth value of pixels that are not part of the image (padding)


class CorrectiveClicks:
    """One click per object and round where its current prediction is most wrong.

    Each object gets the interactive evaluation's ``ClickSimulator`` (RITM protocol: the pixel
    deepest inside the larger of the false-negative / false-positive regions, a positive click for
    a false negative, never twice on the same pixel), run on the mask grid of the decoder, so the
    clicks a model is trained with follow the same rule as the clicks it is evaluated with. The
    padding of the batch input is ignored: it is neither object nor background, and a click never
    lands there.

    Args:
        gt: bool ``[N, h, w]`` object masks on the mask grid.
        valid: bool ``[N, h, w]`` pixels of the grid inside the image (False on padding).
        input_hw: the padded input size ``(H, W)`` the grid covers; clicks are returned in its pixels.
    """

    def __init__(self, gt: Tensor, valid: Tensor, input_hw: Tuple[int, int]) -> None:
        if gt.dim() != 3 or valid.shape != gt.shape:
            raise ValueError(f'CorrectiveClicks: gt and valid must both be [N, h, w], got '
                             f'{tuple(gt.shape)} and {tuple(valid.shape)}')
        self.grid_hw = tuple(gt.shape[-2:])
        self.input_hw = tuple(input_hw)
        labels = torch.where(valid, gt.long(), torch.full_like(gt, IGNORE, dtype=torch.long))
        # an object with no pixel on the grid (smaller than a grid cell) has no session
        self.sessions: List[Optional[ClickSimulator]] = [
            ClickSimulator(m.cpu().numpy(), ignore_label=IGNORE) if (m == 1).any() else None
            for m in labels]
        self._gt, self._valid = gt.bool(), valid.bool()

    def __len__(self) -> int:
        return len(self.sessions)

    def next_clicks(self, pred: Tensor) -> Tuple[Tensor, Tensor]:
        """The next click of every object for predictions ``pred`` (bool ``[N, h, w]``).

        Returns:
            points: float ``[N, 2]`` click ``(x, y)`` in input pixels (the centre of its grid cell).
            labels: long ``[N]``: 1 positive (inside a false negative), 0 negative (inside a
                false positive), -1 no click (the prediction is right everywhere, or the object
                has no session).
        """
        if pred.shape != self._gt.shape:
            raise ValueError(f'CorrectiveClicks: pred must be {tuple(self._gt.shape)}, got '
                             f'{tuple(pred.shape)}')
        pred = pred.bool().to(self._gt.device)
        wrong = (pred != self._gt) & self._valid
        points = torch.zeros(len(self), 2)
        labels = torch.full((len(self), ), PADDING, dtype=torch.long)
        pred_np = pred.cpu().numpy()
        for i, session in enumerate(self.sessions):
            if session is None or not wrong[i].any():
                continue
            click = session.next_click(pred_np[i])
            # every error pixel may already have been clicked: then the simulator's maximum is 0
            # and its click lands anywhere; no click is better than a wrong one
            if not wrong[i, click.y, click.x]:
                continue
            h, w = self.grid_hw
            points[i] = torch.tensor([(click.x + 0.5) * self.input_hw[1] / w,
                                      (click.y + 0.5) * self.input_hw[0] / h])
            labels[i] = POSITIVE if click.is_positive else NEGATIVE
        return points.to(pred.device), labels.to(pred.device)
