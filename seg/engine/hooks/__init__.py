from .clip_length_curriculum_hook import ClipLengthCurriculumHook
from .divergence_guard_hook import DivergenceGuardHook, TrainingDivergedError
from .exact_resume_hook import ExactResumeHook
from .interactive_predictor_hook import BindInteractivePredictorHook
from .save_first_checkpoint_hook import SaveFirstCheckpointHook
from .seg_visualization_hook import SegVisualizationHook

__all__ = ['BindInteractivePredictorHook', 'ClipLengthCurriculumHook', 'DivergenceGuardHook',
           'ExactResumeHook', 'SaveFirstCheckpointHook', 'SegVisualizationHook',
           'TrainingDivergedError']
