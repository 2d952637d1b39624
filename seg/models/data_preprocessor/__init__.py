from .seg_data_preprocessor import SegDataPreprocessor
from .vid_sam_preprocessor import VideoSegDataPreprocessor

__all__ = ['SegDataPreprocessor', 'VideoSegDataPreprocessor']
