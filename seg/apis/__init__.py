from .automatic_mask_generator import FastSAM2AutomaticMaskGenerator
from .click_predictor import ModelClickPredictor
from .image_predictor import DEFAULT_IMAGE_SIZE, FastSAM2ImagePredictor
from .predictor import SegPredictor
from .video_io import VideoSource, open_video
from .video_predictor import FastSAM2VideoPredictor, VideoState
from .visualization import draw_panoptic, draw_prompt_result

__all__ = ['DEFAULT_IMAGE_SIZE', 'FastSAM2AutomaticMaskGenerator', 'FastSAM2ImagePredictor',
           'ModelClickPredictor', 'SegPredictor', 'draw_panoptic', 'draw_prompt_result',
           'FastSAM2VideoPredictor', 'VideoState', 'VideoSource', 'open_video']
