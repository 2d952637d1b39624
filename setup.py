"""Installable `seg` package: the FastSAM2 plugin for MMEngine / MMDetection."""
from setuptools import find_packages, setup

setup(
    name='fastsam2',
    version='0.1.0',
    description='FastSAM2: real-time segment-anything (interactive, VOS, panoptic) distilled from SAM2',
    packages=find_packages(include=['seg', 'seg.*']),
    python_requires='>=3.10',
    # The full pinned stack (torch, mmcv with compiled ops, sam2 sdist) needs an ordered install:
    # see tools/setup_env.sh and requirements.txt.
    install_requires=['mmengine>=0.10.7', 'mmdet>=3.3.0', 'open_clip_torch>=3.0', 'pycocotools'],
)
