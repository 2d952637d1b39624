"""Train one stage of the FastSAM2 recipe: online SAM2 distillation, images and video.

    python tools/train_fast_sam2.py CONFIG --stage N [--teacher-config T] [--teacher-checkpoint P]
        [--task-mode {interactive,vos,panoptic,joint}] [--distill-weight W] [--work-dir DIR]
        [--load-from CKPT | --resume [CKPT|auto]] [--amp [--amp-dtype bfloat16]] [--auto-scale-lr]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm}] [--allow-random-teacher]
    bash tools/dist_train.sh CONFIG 8 --stage N ...          # DDP (torchrun), multi-node by env vars

Stages (configs/fastsam2/stage*.py; each starts from the previous stage's checkpoint, its
``load_from``): 1 backbone distillation, 2 interactive, 3 VOS, 4 joint, 5 deployment export
(no training: writes ``<work_dir>/fastsam2_deploy.pth`` from the stage-4 checkpoint).
The flags are documented in ``seg/engine/fastsam2_stages.py`` and ``seg/engine/runner_config.py``.
"""
import seg  # noqa: F401  (registers modules, torch.load compatibility for resume)
from seg.engine.fastsam2_stages import build_parser, run

if __name__ == '__main__':
    run(build_parser().parse_args())
