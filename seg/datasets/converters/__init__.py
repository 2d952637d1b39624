"""Offline preparation: COCO prompt files, YouTube-VIS clip/prompt files, DAVIS index files.

The command-line wrappers live in ``tools/dataset_converters/``.
"""
from .coco_interactive import coco_to_interactive_prompts, load_interactive_prompts
from .davis_index import davis_to_index
from .ytvis_interactive import load_ytvis_interactive_meta, ytvis_to_interactive_clips

__all__ = ['coco_to_interactive_prompts', 'davis_to_index', 'load_interactive_prompts',
           'load_ytvis_interactive_meta', 'ytvis_to_interactive_clips']
