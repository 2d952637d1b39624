"""Evaluation protocols (interactive NoC/mIoU, DAVIS J&F, COCO panoptic PQ) and their metrics."""
from .davis import contour_accuracy, evaluate_davis, region_similarity, sequence_statistics, write_davis_png
from .interactive import (
                    Click,
                    ClickSimulator,
                    InteractivePredictor,
                    compute_noc,
                    mask_iou,
                    miou_at_clicks,
                    run_click_session,
)
from .metrics import DAVISMetric, InteractiveSegMetric, PanopticQualityMetric, YouTubeVIS2019Metric
from .panoptic_quality import PQStat, pq_compute

__all__ = [
    'Click', 'ClickSimulator', 'InteractivePredictor', 'compute_noc', 'mask_iou', 'miou_at_clicks',
    'run_click_session', 'contour_accuracy', 'evaluate_davis', 'region_similarity',
    'sequence_statistics', 'write_davis_png', 'PQStat', 'pq_compute', 'DAVISMetric',
    'InteractiveSegMetric', 'PanopticQualityMetric', 'YouTubeVIS2019Metric'
]
