from .clip_length_curriculum_hook import ClipLengthCurriculumHook
from .interactive_predictor_hook import BindInteractivePredictorHook

__all__ = ['BindInteractivePredictorHook', 'ClipLengthCurriculumHook']
