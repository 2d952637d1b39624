"""SAM2 teachers for online distillation (``model.teacher``) and the matching distillation pairs.

``sam2_large_teacher``: SAM2.1 Hiera-L from its LOCAL checkpoint (fetch
``facebook/sam2.1-hiera-large`` -> ``sam2.1_hiera_large.pt`` into ``data/pretrained/``; nothing is
downloaded; a missing file is an error naming it). Its FPN levels 0/1/2 (strides 4/8/16) have
32 / 64 / 256 channels. Other sizes: ``--teacher-config configs/sam2.1/sam2.1_hiera_{t,s,b+}.yaml
--teacher-checkpoint ...`` (same channels: the decoder width is 256 in every released SAM2).

``sam2_tiny_random_teacher``: a tiny random-init SAM2 (8-d Hiera, 32-d decoder, 128 px) for
tests and the toy quickstart ONLY (its outputs are noise; it logs a loud warning). Its levels have
4 / 8 / 32 channels. The overrides are ``seg.models.teachers.sam2_teacher.TINY_SAM2_OVERRIDES``,
written out because new-style configs import lazily; ``tests/test_configs.py`` checks they match.
"""
from seg.models.teachers import SAM2Teacher

sam2_large_teacher = dict(
    type=SAM2Teacher, config='configs/sam2.1/sam2.1_hiera_l.yaml',
    checkpoint='data/pretrained/sam2.1_hiera_large.pt', image_size=1024,
    feature_levels=(0, 1, 2), dtype='bf16')
sam2_large_teacher_channels = [32, 64, 256]

sam2_tiny_random_teacher = dict(
    type=SAM2Teacher, config='configs/sam2.1/sam2.1_hiera_t.yaml', checkpoint=None,
    allow_random_init=True, image_size=128, feature_levels=(0, 1, 2), dtype='fp32',
    overrides=(
        '++model.image_encoder.trunk.embed_dim=8',
        '++model.image_encoder.trunk.stages=[1,1,2,1]',
        '++model.image_encoder.trunk.global_att_blocks=[3]',
        '++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]',
        '++model.image_encoder.neck.d_model=32',
        '++model.image_encoder.neck.position_encoding.num_pos_feats=32',
        '++model.memory_attention.d_model=32',
        '++model.memory_attention.num_layers=1',
        '++model.memory_attention.layer.d_model=32',
        '++model.memory_attention.layer.dim_feedforward=32',
        '++model.memory_attention.layer.self_attention.embedding_dim=32',
        '++model.memory_attention.layer.cross_attention.embedding_dim=32',
        '++model.memory_encoder.in_dim=32',
        '++model.memory_encoder.mask_downsampler.embed_dim=32',
        '++model.memory_encoder.fuser.layer.dim=32',
    ))
sam2_tiny_random_teacher_channels = [4, 8, 32]
