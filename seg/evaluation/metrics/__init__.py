"""Registered evaluation metrics (``import seg`` registers them into mmdet's METRICS)."""
from .davis_metric import DAVISMetric
from .dump_results import DumpSegResults
from .interactive_metric import InteractiveSegMetric
from .panoptic_quality_metric import PanopticQualityMetric
from .youtube_vis_metric import YouTubeVIS2019Metric

__all__ = ['DAVISMetric', 'DumpSegResults', 'InteractiveSegMetric', 'PanopticQualityMetric',
           'YouTubeVIS2019Metric']
