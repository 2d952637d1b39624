"""The `fastsam2` wheel as a user outside a checkout gets it: built from this tree, installed with
``--no-deps`` into a fresh venv layered on the tested environment's packages, then used from a folder
outside the checkout: a shipped config builds the tiny model, which runs one forward, the console
entry points run the shipped tools, and (where OpenMMLab's ``openmim`` is installed) ``mim train`` /
``mim test`` run a shipped config.

Starting Python with ``seg`` imported costs most of this file's time, so each check that needs it
shares one process."""
import importlib.util
import json
import os
import posixpath
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO_ROOT

# what a wheel build reads (a copy, so that the build writes nothing into the checkout)
BUILD_INPUTS = ('pyproject.toml', 'setup.py', 'MANIFEST.in', 'README.md', 'requirements', 'seg',
                'configs', 'tools', 'demo')

# run as ``python -c USER_SCRIPT <console script fastsam2-test>``
USER_SCRIPT = '''
import contextlib, io, json, runpy, sys
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
# the console script pip generated, run as its own process would run it
entry, usage, status = sys.argv[1], io.StringIO(), None
sys.argv = [entry, '--help']
with contextlib.redirect_stdout(usage):
    try:
        runpy.run_path(entry, run_name='__main__')
    except SystemExit as exit_:
        status = exit_.code
print(json.dumps(dict(seg=seg.__file__, root=str(resource_root()), config=cfg,
                      configs=listing.getvalue().split(),
                      masks=list(masks.shape), scores=list(scores.shape),
                      usage=usage.getvalue(), status=status)))
'''
# 1 training iteration of the toy RapSAM on a 1+1-image toy dataset, then its evaluation
MIM_CONFIG = 'rapsam_tiny_toy.py'
MIM_TRAIN_OPTIONS = ('train_cfg.max_iters=1', 'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
                     'param_scheduler.1.end=2', 'default_hooks.checkpoint.interval=1',
                     'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                     'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False')
MIM_TEST_OPTIONS = ('test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False')


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
        top_level = zf.read(next(n for n in names if n.endswith('.dist-info/top_level.txt'))).decode()
    for shipped in ('seg/.mim/configs/fastsam2/model_fastsam2_tiny.py',
                    'seg/.mim/configs/_base_/default_runtime.py',
                    'seg/.mim/tools/train.py', 'seg/.mim/tools/test.py', 'seg/.mim/tools/dist_train.sh',
                    'seg/.mim/demo/demo.py', 'seg/cli.py', 'seg/__init__.py'):
        assert shipped in names, shipped
    assert not any('__pycache__' in n or n.startswith('tests/') for n in names)
    # what ``mim train fastsam2 NAME.py`` relies on: the package's module from top_level.txt, and a
    # config found by its file name alone, searched over every file of the package
    assert top_level.split() == ['seg'], top_level
    by_name = {}
    for n in names:
        if n.endswith('.py'):
            by_name.setdefault(posixpath.basename(n), []).append(n)
    shipped_configs = [n for n in names if n.startswith('seg/.mim/configs/') and n.endswith('.py')
                       and '/_base_/' not in n]
    assert {n: by_name[posixpath.basename(n)] for n in shipped_configs
            if len(by_name[posixpath.basename(n)]) > 1} == {}
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


@pytest.fixture(scope='module')
def installed(wheel, tmp_path_factory) -> SimpleNamespace:
    """The wheel installed into a fresh venv, and a folder outside the checkout with the
    environment a user of that venv has."""
    root = tmp_path_factory.mktemp('installed')
    venv = root / 'venv'
    _run([sys.executable, '-m', 'venv', '--without-pip', venv])
    site = Path(_run([venv / 'bin/python', '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'])
                .stdout.strip())
    # the tested environment's packages (torch, mmdet, ...), after the venv's own; .pth files in
    # them are not run, so an editable `seg` there stays invisible
    tested = [p for p in sys.path if p.endswith('site-packages') and Path(p).is_dir()]
    (site / '_tested_env.pth').write_text('\n'.join([sysconfig.get_path('purelib'), *tested]) + '\n')
    _run([venv / 'bin/python', '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--ignore-installed',
          wheel])
    elsewhere = root / 'elsewhere'
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env['PATH'] = f'{venv / "bin"}{os.pathsep}{env.get("PATH", "")}'
    return SimpleNamespace(python=venv / 'bin/python', bin=venv / 'bin', site=site, cwd=elsewhere, env=env)


def test_installed_wheel_builds_and_runs_a_shipped_config_outside_the_checkout(installed):
    site = installed.site
    out = json.loads(_run([installed.python, '-c', USER_SCRIPT, installed.bin / 'fastsam2-test'],
                          cwd=installed.cwd, env=installed.env).stdout.strip().splitlines()[-1])
    assert Path(out['seg']).is_relative_to(site), out['seg']
    assert Path(out['config']) == site / 'seg/.mim/configs/fastsam2/model_fastsam2_tiny.py'
    assert out['masks'] == [3, 96, 128] and out['scores'] == [3]  # SAM's three candidates, image size
    assert {'fastsam2/model_fastsam2_tiny.py', 'rapsam/rapsam_tiny_coco_panoptic.py'} <= set(out['configs'])
    # the fastsam2-test entry point runs the shipped tool
    assert out['status'] == 0 and '--show-dir' in out['usage'] and '--out' in out['usage'], out['usage']


def test_mim_trains_and_tests_a_shipped_config_from_the_installed_wheel(installed):
    """``mim train`` / ``mim test`` find the package, its config and tools in the installed copy."""
    if importlib.util.find_spec('mim') is None or importlib.util.find_spec('pkg_resources') is None:
        pytest.skip('openmim is not installed (see the README: pip install --no-deps openmim; its '
                    "imports: model-index pandas tabulate colorama requests 'setuptools<81')")
    from seg.datasets.toy_dataset import make_toy_dataset

    make_toy_dataset(installed.cwd / 'data/toy', num_images=(1, 1), image_size=(96, 128), parts=('coco', ))
    mim = [installed.python, '-m', 'mim']
    shipped = installed.site.resolve() / 'seg/.mim'
    train = _run([*mim, 'train', 'fastsam2', MIM_CONFIG, '--work-dir', 'work_dirs/train', '--cfg-options',
                  *MIM_TRAIN_OPTIONS], cwd=installed.cwd, env=installed.env).stdout
    assert _mim_command(train, 'Training') == [shipped / 'tools/train.py',
                                                shipped / f'configs/rapsam/{MIM_CONFIG}']
    checkpoint = installed.cwd / 'work_dirs/train/iter_1.pth'
    assert checkpoint.is_file()
    test = _run([*mim, 'test', 'fastsam2', MIM_CONFIG, '--checkpoint', checkpoint, '--work-dir',
                 'work_dirs/test', '--metrics-out', 'metrics.json', '--cfg-options', *MIM_TEST_OPTIONS],
                cwd=installed.cwd, env=installed.env).stdout
    assert _mim_command(test, 'Testing') == [shipped / 'tools/test.py',
                                             shipped / f'configs/rapsam/{MIM_CONFIG}', checkpoint.resolve()]
    metrics = json.loads((installed.cwd / 'metrics.json').read_text())
    assert {'coco_panoptic/PQ', 'coco_panoptic/SQ', 'coco_panoptic/RQ'} <= set(metrics), metrics
    assert all(0 <= v <= 1 for v in metrics.values()), metrics


def _mim_command(stdout: str, verb: str) -> list:
    """The script and the files (resolved) of the command mim reports running: ``<verb> command is
    PYTHON SCRIPT CONFIG [CHECKPOINT] --launcher ...``."""
    line = next((x for x in stdout.splitlines() if x.startswith(f'{verb} command is ')), None)
    assert line is not None, stdout[-3000:]
    args = line.split()[4:]
    return [Path(a).resolve() for a in args[:args.index('--launcher')]]
