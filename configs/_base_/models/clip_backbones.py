"""OpenCLIP backbone variants (mmengine new-style config): ``read_base()`` this file and pick one.

Each ``<variant>`` is an ``OpenCLIPBackbone`` config and ``<variant>_channels`` its 4 output
channels (strides 4, 8, 16, 32), e.g. for ``YOSONeck(in_channels=...)``.

The real variants load LOCAL open_clip checkpoints (nothing is downloaded); fetch them once from
the HuggingFace hub into ``data/pretrained/`` (file ``open_clip_pytorch_model.bin`` of the repo):

- RN50, OpenAI weights: ``timm/resnet50_clip.openai``. Those weights were trained with QuickGELU
  in the text tower, hence open_clip's ``RN50-quickgelu`` (the vision tower is the same as RN50's).
- ConvNeXt-L (320 px, LAION-2B soup): ``laion/CLIP-convnext_large_d_320.laion2B-s29B-b131K-ft-soup``.

The tiny variants are random-init test models (ModifiedResNet layers [1, 1, 1, 1] width 16, timm
``convnext_atto``) with a 1-layer text tower; they build in a fraction of a second.
"""
from seg.models.backbones import OpenCLIPBackbone

_tiny_text_cfg = dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1)

tiny_resnet_clip = dict(
    type=OpenCLIPBackbone,
    model_name='fastsam2_tiny_rn',
    model_cfg=dict(
        embed_dim=32,
        vision_cfg=dict(image_size=64, layers=[1, 1, 1, 1], width=16),
        text_cfg=_tiny_text_cfg),
    freeze=False)
tiny_resnet_clip_channels = [64, 128, 256, 512]

tiny_convnext_clip = dict(
    type=OpenCLIPBackbone,
    model_name='fastsam2_tiny_convnext',
    model_cfg=dict(
        embed_dim=32,
        vision_cfg=dict(timm_model_name='convnext_atto', timm_model_pretrained=False, timm_pool='',
                        timm_proj='linear', image_size=64),
        text_cfg=_tiny_text_cfg),
    freeze=False)
tiny_convnext_clip_channels = [40, 80, 160, 320]

r50_clip = dict(
    type=OpenCLIPBackbone,
    model_name='RN50-quickgelu',
    pretrained='data/pretrained/RN50-quickgelu_openai.bin',
    freeze=True)
r50_clip_channels = [256, 512, 1024, 2048]

convnext_large_clip = dict(
    type=OpenCLIPBackbone,
    model_name='convnext_large_d_320',
    pretrained='data/pretrained/convnext_large_d_320_laion2b_s29b_b131k_ft_soup.bin',
    freeze=True)
convnext_large_clip_channels = [192, 384, 768, 1536]
