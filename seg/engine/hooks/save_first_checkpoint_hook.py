"""A CheckpointHook that removes superseded checkpoints only after the new one is saved."""
from mmengine.hooks import CheckpointHook

from seg.registry import HOOKS


@HOOKS.register_module()
class SaveFirstCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` deletes the checkpoints beyond ``max_keep_ckpts`` BEFORE it
    writes the new one: with ``max_keep_ckpts=1``, a run killed during that write is left with no
    checkpoint at all. This hook makes the same deletions after the new checkpoint (and
    ``last_checkpoint``) are written, so a kill at any moment leaves at least one whole
    checkpoint (a kill between the write and the deletions leaves one extra, harmlessly)."""

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        superseded = []
        backend = self.file_backend
        # the parent calls remove / rmtree before saving: collect them instead (an instance
        # attribute shadows the backend's method for this call only)
        backend.remove = superseded.append
        backend.rmtree = superseded.append
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            del backend.remove, backend.rmtree
        for path in superseded:
            if backend.isfile(path):
                backend.remove(path)
            elif backend.isdir(path):  # deepspeed checkpoints are folders
                backend.rmtree(path)
