"""Overlay pictures of predictions (panoptic maps, prompt masks with their clicks and boxes)."""
from typing import Optional, Sequence

import numpy as np
from mmdet.evaluation import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmdet.visualization.palette import get_palette
from mmengine.visualization import Visualizer

from seg.structures import NEGATIVE, POSITIVE, scale_prompts


def _visualizer(name: str) -> DetLocalVisualizer:
    # mmengine keeps visualizers in a global registry by name: reuse ours instead of re-creating
    if DetLocalVisualizer.check_instance_created(name):
        return DetLocalVisualizer.get_instance(name)
    return DetLocalVisualizer.get_instance(name, alpha=0.6)


def draw_panoptic(image_bgr: np.ndarray, sample: DetDataSample, class_names: Sequence[str]) -> np.ndarray:
    """RGB overlay of ``sample.pred_panoptic_seg`` (segments coloured by class, labelled)."""
    pan = sample.pred_panoptic_seg.sem_seg
    if not (pan % INSTANCE_OFFSET != len(class_names)).any():
        return image_bgr[..., ::-1].copy()  # all void: nothing to draw (mmdet's drawer fails on it)
    vis = _visualizer('fastsam2_panoptic')
    vis.dataset_meta = dict(classes=tuple(class_names),
                            palette=get_palette('random', len(class_names)))
    pred = DetDataSample()
    pred.pred_panoptic_seg = sample.pred_panoptic_seg
    vis.add_datasample('panoptic', image_bgr[..., ::-1], pred, draw_gt=False, show=False)
    return vis.get_image()


def draw_prompt_result(image_bgr: np.ndarray, sample: DetDataSample,
                       class_names: Optional[Sequence[str]] = None) -> np.ndarray:
    """RGB overlay of one mask per prompted object, with its clicks (green +, red -) and boxes."""
    vis: Visualizer = _visualizer('fastsam2_prompts')
    vis.set_image(image_bgr[..., ::-1].copy())
    masks = sample.pred_instances.masks.cpu().numpy()
    palette = get_palette('random', max(len(masks), 1))
    if len(masks):
        vis.draw_binary_masks(masks, colors=palette[:len(masks)], alphas=0.5)
    prompts = sample.prompts if 'prompts' in sample else None
    if prompts is not None:
        # the preprocessor scaled the prompts to the network input: back to image pixels
        sx, sy = sample.metainfo.get('scale_factor', (1.0, 1.0))
        prompts = scale_prompts(prompts, 1 / sx, 1 / sy)
        pts = prompts.points.reshape(-1, 2).cpu().numpy()
        labels = prompts.point_labels.flatten().cpu().numpy()
        for lab, color, marker in ((POSITIVE, 'lime', 'P'), (NEGATIVE, 'red', 'X')):
            sel = pts[labels == lab]
            if len(sel):
                vis.draw_points(sel, colors=color, marker=marker, sizes=np.full(len(sel), 80))
        boxes = prompts.bboxes[prompts.box_valid].cpu().numpy()
        if len(boxes):
            vis.draw_bboxes(boxes, edge_colors='yellow', line_widths=2)
    if class_names is not None and len(masks):
        for mask, label, score in zip(masks, sample.pred_instances.labels.tolist(),
                                      sample.pred_instances.scores.tolist()):
            ys, xs = np.nonzero(mask)
            if len(ys):
                vis.draw_texts(f'{class_names[label]} {score:.2f}', np.array([xs.min(), ys.min()]),
                               colors='white', font_sizes=9,
                               bboxes=[dict(facecolor='black', alpha=0.6, pad=0.5, edgecolor='none')])
    return vis.get_image()


def draw_vos_strip(frames_rgb: Sequence[np.ndarray], id_maps: Sequence[np.ndarray],
                   titles: Optional[Sequence[str]] = None, alpha: float = 0.55) -> np.ndarray:
    """One RGB picture of a tracked video: the frames side by side, each object's mask (id map
    ``[H, W]``, 0 background, 255 void left undrawn) in its own colour, the same colour on every
    frame, so identity switches show at a glance."""
    if len(frames_rgb) != len(id_maps) or not frames_rgb:
        raise ValueError(f'draw_vos_strip: {len(frames_rgb)} frames for {len(id_maps)} id maps '
                         '(need the same number, at least one)')
    ids = sorted({int(i) for m in id_maps for i in np.unique(m)} - {0, 255})
    palette = {i: np.array(c, dtype=np.float32)
               for i, c in zip(ids, get_palette('random', max(len(ids), 1)))}
    tiles = []
    for t, (frame, id_map) in enumerate(zip(frames_rgb, id_maps)):
        if frame.shape[:2] != id_map.shape:
            raise ValueError(f'draw_vos_strip: frame {t} is {frame.shape[:2]} but its id map is '
                             f'{id_map.shape}')
        tile = frame.astype(np.float32)
        for i, color in palette.items():
            sel = id_map == i
            tile[sel] = (1 - alpha) * tile[sel] + alpha * color
        vis: Visualizer = _visualizer('fastsam2_vos')
        vis.set_image(tile.clip(0, 255).astype(np.uint8))
        if titles is not None:
            vis.draw_texts(titles[t], np.array([3, 3]), colors='white', font_sizes=9,
                           bboxes=[dict(facecolor='black', alpha=0.6, pad=0.5, edgecolor='none')])
        tiles.append(vis.get_image())
    return np.concatenate(tiles, axis=1)
