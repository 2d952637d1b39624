from . import backbones, data_preprocessor, detectors, heads, losses, necks, teachers, utils  # noqa: F401
from .backbones import OpenCLIPBackbone
from .data_preprocessor import SegDataPreprocessor, VideoSegDataPreprocessor
from .detectors import RapSAM
from .heads import RapSAMVideoHead
from .necks import MaskStateRefiner, YOSONeck
from .teachers import SAM2Teacher

__all__ = ['OpenCLIPBackbone', 'SegDataPreprocessor', 'VideoSegDataPreprocessor', 'RapSAM',
           'RapSAMVideoHead', 'MaskStateRefiner', 'YOSONeck', 'SAM2Teacher']
