"""tools/deployment/export_onnx.py and seg.deployment.onnx_export: the tiny FastSAM2 encoder and
prompt decoder exported at 128x128 match PyTorch through onnxruntime, for object / point counts
other than the traced ones (dynamic axes). The video graphs: tests/test_deployment."""
from pathlib import Path

import onnx
import pytest

from seg.apis.image_predictor import build_model
from seg.deployment.onnx_export import DECODER_INPUTS, check_parity, export_onnx
from tests.conftest import load_script
from tests.test_deployment.onnx_cases import graph_dims

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / 'configs/fastsam2/model_fastsam2_tiny.py')


def _cli():
    return load_script('tools/deployment/export_onnx.py')


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp('onnx')
    with pytest.warns(UserWarning, match='RANDOM weights'):
        model = build_model(TINY, None, image_size=None)
    files = export_onnx(model, str(out), (128, 128), ('encoder', 'decoder'), verbose=False)
    return model, out, files


def test_graphs_have_dynamic_object_and_point_axes(exported):
    _, _, files = exported
    graph = onnx.load(files['decoder']).graph
    dims = graph_dims(graph.input)
    assert [i.name for i in graph.input] == DECODER_INPUTS
    assert dims['point_coords'] == ['num_objects', 'num_points', 2]
    assert dims['mask_input'] == ['num_objects', 32, 32]
    assert [o.name for o in graph.output] == ['mask_logits', 'iou_scores']
    onnx.checker.check_model(files['encoder'])


def test_onnxruntime_parity_encoder_and_decoder(exported):
    model, out, _ = exported
    # traced with 2 objects x 3 points: these counts all differ from it in at least one axis
    diffs = check_parity(model, str(out), (128, 128), ('encoder', 'decoder'),
                         cases=((1, 1), (1, 2), (3, 1), (3, 2)))
    assert set(diffs) == {'encoder', 'decoder_N1_P1', 'decoder_N1_P2', 'decoder_N3_P1',
                          'decoder_N3_P2'}
    assert max(diffs.values()) < 1e-3, diffs


def test_cli_rejects_unknown_parts_before_building(tmp_path, capsys):
    cli = _cli()
    assert cli.main(['--config', TINY, '--out-dir', str(tmp_path), '--parts', 'encoder,head']) == 1
    assert "unknown part(s) ['head']" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_rejects_video_for_a_model_without_memory(tmp_path, capsys):
    """RapSAM without FastSAM2's streaming memory cannot track: 'video' fails before any export."""
    cli = _cli()
    config = str(REPO / 'configs/rapsam/rapsam_tiny_coco_panoptic.py')
    with pytest.warns(UserWarning, match='RANDOM weights'):
        assert cli.main(['--config', config, '--out-dir', str(tmp_path), '--parts',
                         'encoder,video']) == 1
    assert 'no streaming memory' in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_exports_video_for_a_model_with_a_mask_warp(tmp_path):
    """The warp's previous-frame keys become graph state (parity: tests/test_deployment)."""
    cli = _cli()
    with pytest.warns(UserWarning, match='RANDOM weights'):
        assert cli.main(['--config', TINY, '--out-dir', str(tmp_path), '--parts', 'video',
                         '--image-size', '64', '--cfg-options',
                         'model.panoptic_head.mask_warp.radius=2']) == 0
    step = onnx.load(str(tmp_path / 'video_step.onnx')).graph
    assert [i.name for i in step.input][-2:] == ['image', 'prev_warp_keys']
    assert step.output[-1].name == 'warp_keys'
