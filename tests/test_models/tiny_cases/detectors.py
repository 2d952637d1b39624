"""Tiny cases for the detector and the data preprocessors (and helpers the detector tests reuse)."""
import numpy as np
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

from seg.models import VideoSegDataPreprocessor
from seg.models.teachers import TINY_SAM2_OVERRIDES
from seg.structures import build_prompts
from tests.conftest import REPO_ROOT

from . import TinyCase
from .heads import PROPAGATION

TINY_CFG = REPO_ROOT / 'configs/rapsam/rapsam_tiny_coco_panoptic.py'
FASTSAM2_TINY_CFG = REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py'


def tiny_model_cfg() -> dict:
    return Config.fromfile(str(TINY_CFG)).model


def fastsam2_model_cfg(video: bool = False) -> dict:
    """The tiny FastSAM2 model (every switch on); ``video`` swaps in the clip preprocessor."""
    cfg = Config.fromfile(str(FASTSAM2_TINY_CFG)).model
    if video:
        cfg.data_preprocessor.type = VideoSegDataPreprocessor
    return cfg


def packed_image(h: int = 48, w: int = 64, with_gt: bool = True, prompts: bool = True,
                 frame_id: int = 0, ids=(7, 9), prompt_gt_ids=(0, 2)) -> dict:
    """A packed image (uint8 [3, H, W]) and its sample: two thing instances, one stuff segment
    (label 100), and prompts drawn from instance 0 and the stuff segment."""
    img = torch.randint(0, 255, (3, h, w), dtype=torch.uint8)
    s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0),
                                    img_path=f'frame{frame_id}.jpg', frame_id=frame_id))
    if with_gt:
        m = np.zeros((2, h, w), np.uint8)
        m[0, 5:20, 5:30] = 1
        m[1, 25:45, 30:60] = 1
        s.gt_instances = InstanceData(bboxes=torch.tensor([[5., 5., 30., 20.], [30., 25., 60., 45.]]),
                                      labels=torch.tensor([0, 2]), masks=BitmapMasks(m, h, w),
                                      instances_ids=torch.tensor(list(ids)))
        sem = torch.full((1, h, w), 255, dtype=torch.long)
        sem[0, :, :] = 100
        sem[0, 5:20, 5:30] = 0
        sem[0, 25:45, 30:60] = 2
        s.gt_sem_seg = PixelData(sem_seg=sem)
    if prompts:
        s.prompts = build_prompts(points=[[[15, 12], [40, 40]], [[3, 40]]], point_labels=[[1, 0], [1]],
                                  bboxes=[[4, 4, 31, 21], [0, 0, 0, 0]], box_valid=[True, False],
                                  texts=['person', ''], gt_ids=list(prompt_gt_ids))
        mask_prompt = torch.zeros(2, h, w)
        mask_prompt[0, 6:18, 6:28] = 1  # the first object also carries a (VOS-style) mask prompt
        s.prompts.masks = mask_prompt
    return dict(inputs=img, data_samples=s)


def packed_clip(t: int = 3, prompts_on_first: bool = True) -> dict:
    # video targets are the instances (no stuff): prompt the two tracked objects
    frames = [packed_image(prompts=prompts_on_first and i == 0, frame_id=i, prompt_gt_ids=(0, 1))
              for i in range(t)]
    track = TrackDataSample()
    track.video_data_samples = [f['data_samples'] for f in frames]
    return dict(inputs=torch.stack([f['inputs'] for f in frames]), data_samples=track)


def run_loss(model, batch: list):
    data = model.data_preprocessor(dict(inputs=[b['inputs'] for b in batch],
                                        data_samples=[b['data_samples'] for b in batch]), True)
    return model.loss(data['inputs'], data['data_samples'])


def _video_model_cfg() -> dict:
    cfg = tiny_model_cfg()
    cfg.data_preprocessor.type = VideoSegDataPreprocessor
    return cfg


def distilled_model_cfg(video: bool = False) -> dict:
    """The tiny FastSAM2 distilled from a tiny random SAM2 (its levels: stride 4 / 8 / 16 with
    4 / 8 / 32 channels): the neck from level 2, the backbone's stage 2 from level 1."""
    cfg = fastsam2_model_cfg(video)
    cfg.backbone.distill_keys = ('stage2', )
    cfg.teacher = dict(type='SAM2Teacher', image_size=128, overrides=TINY_SAM2_OVERRIDES,
                       allow_random_init=True)
    cfg.distill = dict(type='SAM2DistillLoss', pairs=[
        dict(student='neck', teacher=2, student_channels=32, teacher_channels=32),
        dict(student='stage2', teacher=1, student_channels=128, teacher_channels=8)])
    return cfg


def _run_preprocessor(pre):
    out = pre(dict(inputs=[packed_image()['inputs']], data_samples=[packed_image()['data_samples']]))
    return out['inputs']


CASES = {
    'RapSAM': TinyCase(tiny_model_cfg(), lambda m: run_loss(m, [packed_image(), packed_image(prompts=False)]),
                       no_grad_ok={'backbone.text': 'frozen text tower',
                                   'backbone.clip.transformer': 'frozen text tower'}),
    'RapSAM[video]': TinyCase(_video_model_cfg(), lambda m: run_loss(m, [packed_clip()]),
                              no_grad_ok={'backbone.text': 'frozen text tower'}),
    'RapSAM[fastsam2]': TinyCase(
        fastsam2_model_cfg(), lambda m: run_loss(m, [packed_image(), packed_image(prompts=False)]),
        no_grad_ok={'backbone.text': 'frozen text tower',
                    'panoptic_head.memory_reader': 'reads the streaming memory: clips only',
                    'panoptic_head.prompt_refiner.propagation_gain': PROPAGATION}),
    'RapSAM[fastsam2-video]': TinyCase(
        fastsam2_model_cfg(video=True), lambda m: run_loss(m, [packed_clip(), packed_clip()]),
        no_grad_ok={'backbone.text': 'frozen text tower',
                    'panoptic_head.multimask_decoder': 'clips are prompted by masks: the multimask '
                                                       'candidates train on single clicks'}),
    'RapSAM[distill]': TinyCase(
        distilled_model_cfg(), lambda m: run_loss(m, [packed_image(), packed_image(prompts=False)]),
        no_grad_ok={'backbone.text': 'frozen text tower',
                    'panoptic_head.memory_reader': 'reads the streaming memory: clips only',
                    'panoptic_head.prompt_refiner.propagation_gain': PROPAGATION}),
    'SegDataPreprocessor': TinyCase(dict(type='SegDataPreprocessor', pad_size_divisor=32), _run_preprocessor),
    'VideoSegDataPreprocessor': TinyCase(
        dict(type='VideoSegDataPreprocessor', pad_size_divisor=32),
        lambda pre: pre(dict(inputs=[packed_clip()['inputs']],
                             data_samples=[packed_clip()['data_samples']]))['inputs']),
}
