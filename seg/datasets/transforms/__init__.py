"""FastSAM2 data pipeline transforms (registered into mmdet's ``TRANSFORMS``)."""
from .formatting import PackSegInputs, PackSegTrackInputs
from .frame_sampling import SampleVideoClip
from .loading import LoadCocoPanopticAnnotations, LoadVideoFrameAnnotations, rgb_to_panoptic_id
from .prompt_generation import GeneratePrompts, GenerateVideoPrompts

__all__ = ['GeneratePrompts', 'GenerateVideoPrompts', 'LoadCocoPanopticAnnotations',
           'LoadVideoFrameAnnotations', 'PackSegInputs', 'PackSegTrackInputs', 'SampleVideoClip',
           'rgb_to_panoptic_id']
