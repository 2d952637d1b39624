"""FastSAM2 data pipeline transforms (registered into mmdet's ``TRANSFORMS``)."""
from .first_frame_mask_prompts import FirstFrameMaskPrompts
from .formatting import PackSegInputs, PackSegTrackInputs
from .frame_sampling import SampleVideoClip
from .loading import LoadCocoPanopticAnnotations, LoadVideoFrameAnnotations
from .prompt_generation import GeneratePrompts, GenerateVideoPrompts
from .stored_prompts import LoadStoredPrompts

__all__ = ['FirstFrameMaskPrompts', 'GeneratePrompts', 'GenerateVideoPrompts',
           'LoadCocoPanopticAnnotations', 'LoadStoredPrompts', 'LoadVideoFrameAnnotations',
           'PackSegInputs', 'PackSegTrackInputs', 'SampleVideoClip']
