"""Deployment: ONNX export of the image encoder and prompt decoder (``onnx_export``)."""
from .onnx_export import (ImageEncoderONNX, PromptDecoderONNX, check_parity, export_onnx)

__all__ = ['ImageEncoderONNX', 'PromptDecoderONNX', 'check_parity', 'export_onnx']
