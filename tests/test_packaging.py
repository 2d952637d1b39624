"""The `fastsam2` wheel as a user outside a checkout gets it: built from this tree, installed with
``--no-deps`` into a fresh venv layered on the tested environment's packages, then used from a folder
outside the checkout: a shipped config builds the tiny model, which runs one forward, and the
console entry points run the shipped tools."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# what a wheel build reads (a copy, so that the build writes nothing into the checkout)
BUILD_INPUTS = ('pyproject.toml', 'setup.py', 'MANIFEST.in', 'README.md', 'requirements', 'seg',
                'configs', 'tools', 'demo')

USER_SCRIPT = '''
import contextlib, io, json
import numpy as np
import seg
from seg.apis import FastSAM2ImagePredictor
from seg.cli import config_path, main, resource_root

cfg = config_path('fastsam2/model_fastsam2_tiny.py')
predictor = FastSAM2ImagePredictor.from_config(cfg, checkpoint=None, device='cpu', image_size=128)
predictor.set_image(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
masks, scores, _ = predictor.predict(point_coords=[[40, 30]], point_labels=[1])
listing = io.StringIO()
with contextlib.redirect_stdout(listing):
    main(['configs'])
print(json.dumps(dict(seg=seg.__file__, root=str(resource_root()), config=cfg,
                      configs=listing.getvalue().split(),
                      masks=list(masks.shape), scores=list(scores.shape))))
'''


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f'{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}'
    return proc


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    src, out = tmp_path_factory.mktemp('src'), tmp_path_factory.mktemp('wheel')
    for name in BUILD_INPUTS:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copy2(path, src / name)
    _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '--no-index',
          '-w', out, src])
    wheels = list(out.glob('fastsam2-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_ships_configs_tools_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
        entry_points = zf.read(next(n for n in names if n.endswith('.dist-info/entry_points.txt'))).decode()
    for shipped in ('seg/.mim/configs/fastsam2/model_fastsam2_tiny.py',
                    'seg/.mim/configs/_base_/default_runtime.py',
                    'seg/.mim/tools/train.py', 'seg/.mim/tools/test.py', 'seg/.mim/tools/dist_train.sh',
                    'seg/.mim/demo/demo.py', 'seg/cli.py', 'seg/__init__.py'):
        assert shipped in names, shipped
    assert not any('__pycache__' in n or n.startswith('tests/') for n in names)
    requires = [line.split(':', 1)[1].strip() for line in metadata.splitlines()
                if line.startswith('Requires-Dist:')]
    for dep in ('torch>=2.6', 'mmcv<2.2.0,>=2.0.0', 'mmdet<3.4,>=3.3.0', 'numpy>=2.0', 'sam2>=1.1.0'):
        assert dep in requires, (dep, requires)
    assert not any(r.startswith(('fvcore', 'onnx')) for r in requires if 'extra ==' not in r)
    extras = {line.split(':', 1)[1].strip() for line in metadata.splitlines()
              if line.startswith('Provides-Extra:')}
    assert {'tests', 'export', 'serve', 'dev'} <= extras
    for command in ('fastsam2 = seg.cli:main', 'fastsam2-train = seg.cli:train',
                    'fastsam2-test = seg.cli:test',
                    'fastsam2-demo = seg.cli:demo', 'fastsam2-benchmark = seg.cli:benchmark',
                    'fastsam2-serve = seg.cli:serve'):
        assert command in entry_points, command


def test_installed_wheel_builds_and_runs_a_shipped_config_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / 'venv'
    _run([sys.executable, '-m', 'venv', '--without-pip', venv])
    site = Path(_run([venv / 'bin/python', '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'])
                .stdout.strip())
    # the tested environment's packages (torch, mmdet, ...), after the venv's own; .pth files in
    # them are not run, so an editable `seg` there stays invisible
    tested = [p for p in sys.path if p.endswith('site-packages') and Path(p).is_dir()]
    (site / '_tested_env.pth').write_text('\n'.join([sysconfig.get_path('purelib'), *tested]) + '\n')
    _run([venv / 'bin/python', '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--ignore-installed',
          wheel])
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env['PATH'] = f'{venv / "bin"}{os.pathsep}{env.get("PATH", "")}'
    out = json.loads(_run([venv / 'bin/python', '-c', USER_SCRIPT], cwd=elsewhere, env=env).stdout
                     .strip().splitlines()[-1])
    assert Path(out['seg']).is_relative_to(site), out['seg']
    assert Path(out['config']) == site / 'seg/.mim/configs/fastsam2/model_fastsam2_tiny.py'
    assert out['masks'] == [3, 96, 128] and out['scores'] == [3]  # SAM's three candidates, image size
    assert {'fastsam2/model_fastsam2_tiny.py', 'rapsam/rapsam_tiny_coco_panoptic.py'} <= set(out['configs'])
    # an entry point runs the shipped tool
    usage = _run([venv / 'bin/fastsam2-test', '--help'], cwd=elsewhere, env=env).stdout
    assert '--show-dir' in usage and '--out' in usage
