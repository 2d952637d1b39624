"""Deployment: ONNX export of the image encoder, prompt decoder and video tracker graphs
(``onnx_export``) and the reference host loop that tracks a video with them (``onnx_tracker``)."""
from .onnx_export import (
    ImageEncoderONNX,
    PromptDecoderONNX,
    VideoPromptONNX,
    VideoStepONNX,
    check_parity,
    export_onnx,
)
from .onnx_tracker import FramePrompts, ONNXVideoTracker, check_video_parity, run_video

__all__ = ['ImageEncoderONNX', 'PromptDecoderONNX', 'VideoPromptONNX', 'VideoStepONNX',
           'check_parity', 'export_onnx', 'FramePrompts', 'ONNXVideoTracker', 'check_video_parity',
           'run_video']
