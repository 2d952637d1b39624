"""FastSAM2 datasets, samplers, prompt sampling and pipeline transforms.

Offline converters live in ``seg.datasets.converters`` and the toy data generator in
``seg.datasets.toy_dataset``; neither registers anything, so they are not imported here.
"""
from . import transforms  # noqa: F401  (registration side effects)
from .base_video_dataset import BaseVideoSegDataset
from .coco_panoptic import CocoPanopticSegDataset
from .davis import DAVISDataset
from .prompt_sampler import PromptSampler, category_words, mask_to_box, readable_name
from .vos_sampler import ClipIndex, VOSCurriculumSampler
from .youtube_vis import YouTubeVIS2019Dataset

__all__ = ['BaseVideoSegDataset', 'ClipIndex', 'CocoPanopticSegDataset', 'DAVISDataset',
           'PromptSampler', 'VOSCurriculumSampler', 'YouTubeVIS2019Dataset', 'category_words',
           'mask_to_box', 'readable_name']
