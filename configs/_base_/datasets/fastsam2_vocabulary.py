"""The class vocabulary of the staged FastSAM2 models: COCO panoptic plus the YouTube-VIS 2019
categories COCO lacks, plus DAVIS's class-agnostic ``'object'``; things first, then COCO stuff.

The classifier is CLIP text embeddings of these names (open vocabulary), so the sources of a
``MultiTaskDataset`` train one classifier after their labels are re-indexed into this list by name
(``fastsam2_aliases``: YouTube-VIS names for COCO classes). Every stage uses the same list, so the
class embeddings of consecutive stages' checkpoints match. ``tests/test_configs.py`` checks that
every YouTube-VIS category lands in it.
"""
from mmengine.config import read_base

with read_base():
    from .coco_panoptic_classes import coco_panoptic_stuff_classes, coco_panoptic_thing_classes

# YouTube-VIS 2019 name -> the COCO class it is
fastsam2_aliases = {'sedan': 'car', 'motorbike': 'motorcycle', 'tennis_racket': 'tennis racket'}
ytvis_extra_thing_classes = (
    'giant_panda', 'lizard', 'parrot', 'ape', 'snake', 'monkey', 'hand', 'rabbit', 'duck', 'fish',
    'turtle', 'leopard', 'fox', 'deer', 'owl', 'tiger', 'shark', 'frog', 'eagle', 'earless_seal')
fastsam2_thing_classes = coco_panoptic_thing_classes + ytvis_extra_thing_classes + ('object', )
fastsam2_stuff_classes = coco_panoptic_stuff_classes
fastsam2_classes = fastsam2_thing_classes + fastsam2_stuff_classes
