"""resize_sample / resize_bilinear: the banded uint8 resize equals F.interpolate on the float
input, and its memory scales with the output (a 48 MP uint8 frame)."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample

from seg.models.data_preprocessor import prompt_utils
from seg.models.data_preprocessor.prompt_utils import resize_bilinear, resize_sample
from seg.structures import build_prompts
from tests.conftest import REPO_ROOT

# 48 MP: the float copy of the whole input the plain path makes is 3 * 6000 * 8000 * 4 = 576 MB;
# the banded path needs the 9 MB float output plus two bands of RESIZE_CHUNK_ELEMENTS / 2 floats
# (measured: 21-32 MB above the input; the allocator's reuse of freed bands varies)
PEAK_EXTRA_BOUND_MB = 100


def _reference(x, size):
    return F.interpolate(x[None].float(), size=size, mode='bilinear', align_corners=False)[0]


@pytest.mark.parametrize('shape,size', [((3, 37, 53), (16, 23)), ((3, 37, 53), (80, 101)),
                                        ((3, 48, 80), (48, 40)), ((2, 9, 7), (1, 1)),
                                        ((1, 30, 40), (45, 60))])
@pytest.mark.parametrize('dtype', [torch.uint8, torch.bool])
def test_banded_resize_equals_interpolate(shape, size, dtype):
    x = torch.randint(0, 256 if dtype == torch.uint8 else 2, shape).to(dtype)
    # chunk_elements=64: a few rows per band, many bands
    got = resize_bilinear(x, size, chunk_elements=64)
    assert got.dtype == torch.float32 and got.shape == (shape[0], *size)
    torch.testing.assert_close(got, _reference(x, size), atol=1e-3, rtol=0)


def test_resize_sample_banded_equals_plain(monkeypatch):
    mask = torch.rand(1, 50, 70) > 0.5  # a bool mask prompt takes the banded path too

    def run():
        s = DetDataSample(metainfo=dict(img_shape=(50, 70), ori_shape=(50, 70),
                                        scale_factor=(1.0, 1.0)))
        p = build_prompts(points=[[[10.0, 20.0]]], point_labels=[[1]])
        p.masks = mask.clone()
        s.prompts = p
        img = resize_sample(torch.arange(3 * 50 * 70).reshape(3, 50, 70).remainder(251)
                            .to(torch.uint8), s, 96)
        return img, s

    plain_img, plain = run()
    monkeypatch.setattr(prompt_utils, 'RESIZE_CHUNK_ELEMENTS', 100)
    banded_img, banded = run()
    assert banded_img.shape == (3, 69, 96) and banded.img_shape == plain.img_shape == (69, 96)
    torch.testing.assert_close(banded_img, plain_img, atol=1e-3, rtol=0)
    torch.testing.assert_close(banded.prompts.masks, plain.prompts.masks, atol=1e-5, rtol=0)
    assert banded.scale_factor == plain.scale_factor


def test_48mp_uint8_resize_memory_scales_with_the_output():
    """Peak RSS above the 144 MB input while a 6000x8000 uint8 frame is resized to 1024: below
    PEAK_EXTRA_BOUND_MB (converting the input to float first, as before, needs 576 MB).

    A fresh process, so its RSS high-water mark is this resize's. It loads prompt_utils.py alone
    (``seg.structures`` stubbed: a sample without prompts never scales any), since importing
    ``seg`` registers every module, which takes longer than the measurement."""
    script = textwrap.dedent('''
        import importlib.util, json, sys, types
        import torch
        from mmdet.structures import DetDataSample
        for name in ('seg', 'seg.structures'):
            sys.modules[name] = types.ModuleType(name)
        sys.modules['seg.structures'].scale_prompts = None
        spec = importlib.util.spec_from_file_location(
            'prompt_utils', 'seg/models/data_preprocessor/prompt_utils.py')
        prompt_utils = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(prompt_utils)

        def status_mb(key):  # VmRSS: now; VmHWM: this process image's peak (ru_maxrss would
            # also count the parent's pages at the fork before exec)
            with open('/proc/self/status') as f:
                line = next(x for x in f if x.startswith(key + ':'))
            return int(line.split()[1]) / 1024

        torch.set_num_threads(1)
        img = torch.empty((3, 6000, 8000), dtype=torch.uint8)
        img.fill_(7)  # touch every page: the input counts in the baseline
        img[:, ::2] = 200
        sample = DetDataSample(metainfo=dict(img_shape=(6000, 8000), ori_shape=(6000, 8000)))
        base = status_mb('VmRSS')
        assert status_mb('VmHWM') - base < 10  # no earlier peak hides the resize's
        out = prompt_utils.resize_sample(img, sample, 1024)
        print(json.dumps(dict(extra=status_mb('VmHWM') - base, shape=list(out.shape),
                              mean=float(out.mean()))))
    ''')
    res = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report['shape'] == [3, 768, 1024]
    assert report['mean'] == pytest.approx((7 + 200) / 2, abs=0.5)  # alternate rows averaged
    assert report['extra'] < PEAK_EXTRA_BOUND_MB, report
