from .click_predictor import ModelClickPredictor
from .predictor import SegPredictor
from .visualization import draw_panoptic, draw_prompt_result

__all__ = ['ModelClickPredictor', 'SegPredictor', 'draw_panoptic', 'draw_prompt_result']
