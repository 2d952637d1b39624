from .ramsam_neck import MaskStateRefiner, YOSONeck

__all__ = ['MaskStateRefiner', 'YOSONeck']
