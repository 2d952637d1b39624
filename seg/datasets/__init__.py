"""FastSAM2 datasets, samplers, prompt sampling and pipeline transforms.

Offline converters live in ``seg.datasets.converters`` and the toy data generator in
``seg.datasets.toy_dataset``; neither registers anything, so they are not imported here.
"""
from . import transforms  # noqa: F401  (registration side effects)
from .base_video_dataset import BaseVideoSegDataset
from .coco_panoptic import CocoPanopticSegDataset
from .davis import DAVISDataset
from .multi_task_dataset import MultiTaskDataset
from .multi_task_sampler import MultiTaskSampler
from .prompt_sampler import PromptSampler, category_words, readable_name
from .stored_prompt_datasets import CocoPanopticPromptFileDataset, YouTubeVISClipFileDataset
from .vos_sampler import ClipIndex, VOSCurriculumSampler
from .youtube_vis import YouTubeVIS2019Dataset

__all__ = ['BaseVideoSegDataset', 'ClipIndex', 'CocoPanopticPromptFileDataset',
           'CocoPanopticSegDataset', 'DAVISDataset', 'MultiTaskDataset', 'MultiTaskSampler',
           'PromptSampler', 'VOSCurriculumSampler', 'YouTubeVIS2019Dataset',
           'YouTubeVISClipFileDataset', 'category_words', 'readable_name']
