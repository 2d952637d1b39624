"""Build hook of the `fastsam2` package (metadata, dependencies and extras are in pyproject.toml).

The wheel ships ``configs/``, ``tools/`` and ``demo/`` inside the package as ``seg/.mim/``, the
layout OpenMMLab's ``mim`` looks for (``mim train fastsam2 CONFIG``), so that an installed copy
finds them (``seg.cli``). An editable install reads them from the checkout instead.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
MIM_DIRS = ('configs', 'tools', 'demo')


class BuildPyWithMim(build_py):
    """``build_py`` that also copies the configs, tools and demo into ``<build>/seg/.mim/``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / 'seg' / '.mim'
        for name in MIM_DIRS:
            source = ROOT / name
            if not source.is_dir():
                raise FileNotFoundError(f'{source} is missing: the wheel ships it as seg/.mim/{name}')
            shutil.copytree(source, target / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


setup(cmdclass={'build_py': BuildPyWithMim})
