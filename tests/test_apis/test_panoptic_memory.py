"""Peak memory of a panoptic predict on an 8000 x 6000 input scales with the processing size.

Measured in a fresh subprocess (``resource.getrusage`` high-water mark, so other tests' memory
does not count) with 100 object queries all kept (``object_mask_thr=0``): fusing at full
resolution would hold 100 float masks of 48 M pixels (19 GB); fused at the processing size and
upsampled as one id map it stays below ``BOUND_MB`` above the process's RSS after building the
model and the input (measured: ~1.0-1.3 GB, mostly the data preprocessor's float copy of the
input before its resize and the int32 id map at full size).
"""
import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

BOUND_MB = 1600

SCRIPT = r'''
import json, resource, sys, warnings
import numpy as np, torch
torch.set_num_threads(1)
torch.manual_seed(0)
from seg.apis import SegPredictor
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    p = SegPredictor.from_config(sys.argv[1], image_size=256, cfg_options={
        'model.test_cfg.object_mask_thr': 0.0, 'model.test_cfg.filter_low_score': False,
        'model.panoptic_head.num_queries': 100})
img = np.zeros((6000, 8000, 3), np.uint8)
img[:, :4000] = (40, 160, 220)
img[3000:, 2000:6000] = (200, 40, 40)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = p.panoptic(img)
pan = res.pred_panoptic_seg.sem_seg[0]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(grown_mb=(peak - base) / 1024, shape=list(pan.shape),
                      fused=list(res.fusion_shape), instances=len(res.pred_instances),
                      queries=p.model.panoptic_head.num_queries)))
'''


def test_panoptic_8000x6000_peak_rss_bounded():
    cfg = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')
    out = subprocess.run([sys.executable, '-c', SCRIPT, cfg], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result['queries'] == 100
    assert result['shape'] == [6000, 8000]  # the map comes back at the input size
    assert max(result['fused']) == 256  # fused at the processing size
    assert result['instances'] > 0  # instances kept (their masks stay at the fusion size)
    assert result['grown_mb'] < BOUND_MB, result
