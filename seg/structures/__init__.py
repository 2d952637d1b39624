from .prompts import NEGATIVE, PADDING, POSITIVE, build_prompts, scale_prompts

__all__ = ['NEGATIVE', 'PADDING', 'POSITIVE', 'build_prompts', 'scale_prompts']
