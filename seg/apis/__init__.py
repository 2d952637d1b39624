from .predictor import SegPredictor
from .visualization import draw_panoptic, draw_prompt_result

__all__ = ['SegPredictor', 'draw_panoptic', 'draw_prompt_result']
