"""No model path may call an mmcv compiled op: the GPU machines' mmcv has CPU-only ``_ext`` kernels.

In a fresh interpreter, ``mmcv._ext`` is replaced by a module whose every function raises; then the
tiny RapSAM and FastSAM2 models train one step and predict (panoptic, interactive, video, streaming
VOS). Pure-Python mmcv helpers such
as ``point_sample`` stay allowed.
"""
import subprocess
import sys

from tests.conftest import REPO_ROOT

SCRIPT = r'''
import sys, types
fake = types.ModuleType('mmcv._ext')
def _trap(name):
    def f(*a, **k):
        raise RuntimeError(f'mmcv compiled op called: {name}')
    return f
fake.__getattr__ = lambda name: _trap(name) if not name.startswith('__') else None
sys.modules['mmcv._ext'] = fake

import torch
sys.path.insert(0, sys.argv[1])
from mmengine.registry import init_default_scope
from seg.models import VideoSegDataPreprocessor
from seg.registry import MODELS
from tests.test_models.tiny_cases.detectors import (fastsam2_model_cfg, packed_clip, packed_image,
                                                    run_loss, tiny_model_cfg)
init_default_scope('mmdet')

# FastSAM2 (every switch on): training on images and clips, then streaming VOS
fast = MODELS.build(fastsam2_model_cfg())
sum(run_loss(fast, [packed_image(), packed_image(prompts=False)]).values()).backward()
fast_video = MODELS.build(fastsam2_model_cfg(video=True))
sum(run_loss(fast_video, [packed_clip(), packed_clip()]).values()).backward()
fast.eval()
with torch.no_grad():
    tracker = fast.new_tracker()
    first = packed_image(with_gt=False)
    for step in range(4):
        frame = first if step == 0 else packed_image(with_gt=False, prompts=False)
        inputs, sample = fast.preprocess_frame(frame['inputs'], frame['data_samples'])
        fast.track_step(tracker, inputs, sample, step)

# the RapSAM baseline: training, then panoptic + interactive and video prediction
model = MODELS.build(tiny_model_cfg())
losses = run_loss(model, [packed_image(), packed_image(prompts=False)])
sum(losses.values()).backward()
model.eval()
with torch.no_grad():
    model.test_step(dict(inputs=[packed_image()['inputs'], packed_image(prompts=False)['inputs']],
                         data_samples=[packed_image()['data_samples'],
                                       packed_image(prompts=False)['data_samples']]))
    model.data_preprocessor = VideoSegDataPreprocessor(pad_size_divisor=32)
    for prompted in (True, False):
        clip = packed_clip(t=2, prompts_on_first=prompted)
        model.test_step(dict(inputs=[clip['inputs']], data_samples=[clip['data_samples']]))
print('OK')
'''


def test_model_paths_use_no_mmcv_compiled_op():
    proc = subprocess.run([sys.executable, '-c', SCRIPT, str(REPO_ROOT)], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith('OK'), proc.stderr[-3000:]
