"""``tools/train_fast_sam2.py``'s flags on real and toy stage configs (no training here): stage
checks, teacher / distillation flags, task modes, resume / load-from / AMP / auto-scale-lr."""
import pytest
import torch

import seg  # noqa: F401
from seg.engine.fastsam2_stages import export_deploy_checkpoint, prepare_config
from seg.registry import MODELS
from tests.conftest import REPO_ROOT
from tests.test_engine.toy_workspace import TOY_STAGES, launcher_args

R50_STAGES = {1: 'stage1_backbone_distill', 2: 'stage2_interactive', 3: 'stage3_vos',
              4: 'stage4_joint', 5: 'stage5_deploy'}


def r50(stage: int) -> str:
    return str(REPO_ROOT / f'configs/fastsam2/{R50_STAGES[stage]}.py')


def prepare(*argv):
    return prepare_config(launcher_args(argv))


def test_stage_must_match_the_config():
    with pytest.raises(ValueError, match=r'--stage 2 does not match .*stage1_backbone_distill.py, a '
                                         r'stage-1 config'):
        prepare(r50(1), '--stage', 2)
    with pytest.raises(ValueError, match='declares no `stage`'):
        prepare(REPO_ROOT / 'configs/rapsam/rapsam_tiny_toy.py', '--stage', 1)
    with pytest.raises(SystemExit):  # argparse: only stages 1..5
        launcher_args([r50(1), '--stage', 6])


def test_teacher_flags_set_the_teacher_and_distillation_weight():
    cfg = prepare(r50(1), '--stage', 1, '--teacher-config', 'configs/sam2.1/sam2.1_hiera_b+.yaml',
                  '--teacher-checkpoint', '/ckpt/sam2.1_hiera_base_plus.pt', '--distill-weight', 0.3)
    assert cfg.model.teacher.config == 'configs/sam2.1/sam2.1_hiera_b+.yaml'
    assert cfg.model.teacher.checkpoint == '/ckpt/sam2.1_hiera_base_plus.pt'
    assert cfg.model.distill.loss_weight == 0.3
    assert not cfg.model.teacher.get('allow_random_init', False)
    # the random teacher is opt-in and drops the default checkpoint path
    cfg = prepare(r50(2), '--stage', 2, '--allow-random-teacher')
    assert cfg.model.teacher.allow_random_init and cfg.model.teacher.checkpoint is None
    with pytest.raises(ValueError, match='--distill-weight must be >= 0'):
        prepare(r50(1), '--stage', 1, '--distill-weight', -1)


@pytest.mark.parametrize('flag', [['--teacher-checkpoint', 'x.pt'], ['--distill-weight', '1'],
                                  ['--teacher-config', 'c.yaml']])
def test_teacher_flags_on_a_stage_without_teacher_are_an_error(flag):
    with pytest.raises(ValueError, match=rf'{flag[0]}: .*stage3_vos.py has no model.teacher'):
        prepare(r50(3), '--stage', 3, *flag)
    # a permission, not a setting: scripts pass it to every stage
    assert prepare(r50(3), '--stage', 3, '--allow-random-teacher').model.get('teacher') is None


def test_task_mode_keeps_the_sources_of_one_task():
    cfg = prepare(r50(4), '--stage', 4, '--task-mode', 'vos')
    assert list(cfg.train_dataloader.dataset.sources) == ['ytvis_vos', 'davis_vos']
    assert cfg.task_mode == 'vos'
    cfg = prepare(r50(4), '--stage', 4, '--task-mode', 'joint')
    assert len(cfg.train_dataloader.dataset.sources) == 5
    with pytest.raises(ValueError, match=r"task mode 'panoptic': no training source of that task; "
                                         r'the sources are ytvis_vos \(vos\), davis_vos \(vos\)'):
        prepare(r50(3), '--stage', 3, '--task-mode', 'panoptic')
    with pytest.raises(ValueError, match='stage 5 .* trains nothing'):
        prepare(r50(5), '--stage', 5, '--task-mode', 'vos')


def test_training_flags(tmp_path):
    cfg = prepare(r50(1), '--stage', 1, '--amp', '--amp-dtype', 'bfloat16', '--auto-scale-lr')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.auto_scale_lr.enable and cfg.auto_scale_lr.base_batch_size == 16
    with pytest.raises(ValueError, match='--amp-dtype needs --amp'):
        prepare(r50(1), '--stage', 1, '--amp-dtype', 'float16')
    with pytest.raises(ValueError, match='--resume and --load-from exclude each other'):
        prepare(r50(1), '--stage', 1, '--resume', '--load-from', __file__)
    with pytest.raises(FileNotFoundError, match='--load-from checkpoint not found: nope.pth'):
        prepare(r50(2), '--stage', 2, '--load-from', 'nope.pth')
    # --resume auto with nothing to resume: a fresh start from the previous stage's checkpoint
    cfg = prepare(r50(2), '--stage', 2, '--resume', '--work-dir', tmp_path)
    assert not cfg.resume and cfg.load_from == 'work_dirs/fastsam2_stage1/iter_40000.pth'
    torch.save(dict(meta=dict(iter=8)), tmp_path / 'iter_8.pth')  # (a valid checkpoint archive)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8.pth'))
    cfg = prepare(r50(2), '--stage', 2, '--resume', 'auto', '--work-dir', tmp_path)
    assert cfg.resume and cfg.load_from == str(tmp_path / 'iter_8.pth')
    with pytest.raises(ValueError, match='--amp, --auto-scale-lr: stage 5 .* trains nothing'):
        prepare(r50(5), '--stage', 5, '--amp', '--auto-scale-lr')


def test_r50_recipe():
    """The real stages: previous-stage checkpoints by path, the paramwise lr, the teacher's local
    checkpoint, what each stage trains on."""
    cfgs = {n: prepare(r50(n), '--stage', n) for n in R50_STAGES}
    for n in (2, 3, 4, 5):
        prev = cfgs[n - 1]
        assert cfgs[n].load_from == f'{prev.work_dir}/iter_{prev.train_cfg.max_iters}.pth'
    keys = cfgs[1].optim_wrapper.paramwise_cfg.custom_keys
    assert keys['backbone'].lr_mult == 0.1 and keys['backbone.geom_branch'].lr_mult == 1.0
    assert keys['backbone.token_fusion'].lr_mult == 1.0
    assert cfgs[1].model.teacher.checkpoint == 'data/pretrained/sam2.1_hiera_large.pt'
    assert cfgs[1].model.backbone.pretrained == 'data/pretrained/RN50-quickgelu_openai.bin'
    tasks = {n: {s.task for s in c.train_dataloader.dataset.sources.values()}
             for n, c in cfgs.items() if n != 5}
    assert tasks == {1: {'panoptic', 'interactive'}, 2: {'interactive'}, 3: {'vos'},
                     4: {'panoptic', 'interactive', 'vos'}}
    assert cfgs[3].model.get('teacher') is None and cfgs[5].model.get('teacher') is None
    assert cfgs[3].custom_hooks[0].schedule == [(0, (4, 6)), (20000, (12, 16))]
    for n in (1, 2, 3, 4):  # 5 % warm-up, then cosine to the end
        c = cfgs[n]
        assert c.param_scheduler[0].end == c.param_scheduler[1].begin == c.train_cfg.max_iters // 20
        assert c.param_scheduler[1].end == c.train_cfg.max_iters
    sources = cfgs[2].train_dataloader.dataset.sources
    assert sources.coco_interactive.dataset.prompt_file == 'data/annotations/fastsam2_interactive.json'
    assert sources.ytvis_interactive.dataset.clip_file == 'data/annotations/ytvis_interactive_meta.pkl'
    assert cfgs[5].train_dataloader is None and cfgs[5].model.data_preprocessor.resize_longest_side


def test_r50_stage1_model_needs_local_weights_then_builds():
    cfg = prepare(r50(1), '--stage', 1)
    with pytest.raises(FileNotFoundError, match='RN50'):
        MODELS.build(cfg.model)
    cfg.model.backbone.pretrained = None
    with pytest.raises(FileNotFoundError, match='sam2.1_hiera_large.pt'):
        MODELS.build(cfg.model)


def test_deploy_export_needs_a_matching_checkpoint(tmp_path):
    cfg = prepare(TOY_STAGES[5], '--stage', 5)
    cfg.load_from = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        export_deploy_checkpoint(cfg, str(tmp_path / 'out.pth'))
    bad = tmp_path / 'bad.pth'
    torch.save(dict(state_dict={'backbone.nope': torch.zeros(1)}), bad)
    cfg.load_from = str(bad)
    with pytest.raises(ValueError, match=r"does not match the deployment model .*'backbone.nope'"):
        export_deploy_checkpoint(cfg, str(tmp_path / 'out.pth'))
