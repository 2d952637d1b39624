"""The tools the quickstart chains: the untrained reference checkpoint, the checkpoint comparison
table and the tracked-video picture."""
import runpy
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from seg.apis.visualization import draw_vos_strip
from seg.evaluation.davis import write_davis_png
from tests.conftest import REPO_ROOT

TOOLS = REPO_ROOT / 'tools'


def _tool(path: str) -> dict:
    return runpy.run_path(str(TOOLS / path), run_name='tool_under_test')


def _run_main(path: str, argv: list, monkeypatch) -> None:
    monkeypatch.setattr(sys, 'argv', [path, *map(str, argv)])
    _tool(path)['main']()


def test_init_checkpoint_is_seeded_and_carries_class_embeddings(tmp_path, monkeypatch):
    cfg = REPO_ROOT / 'configs/rapsam/rapsam_tiny_toy.py'  # randomness = dict(seed=0)
    for name in ('a.pth', 'b.pth'):
        _run_main('misc/save_init_checkpoint.py', [cfg, tmp_path / name], monkeypatch)
    a, b = (torch.load(tmp_path / n, map_location='cpu', weights_only=True)['state_dict']
            for n in ('a.pth', 'b.pth'))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # without the text embeddings the reference model would classify against zeros
    assert a['panoptic_head.class_text_embeds'].abs().sum() > 0


def test_compare_table_and_checkpoint_names(tmp_path):
    tool = _tool('evaluation/compare_checkpoints.py')
    results = {'untrained': {'PQ': 1.5, 'J&F-Mean': 0.1}, 'trained': {'PQ': 40.25}}
    table = tool['format_table'](results).splitlines()
    assert table[0] == '| metric | untrained | trained |'
    assert table[2] == '| PQ | 1.5000 | 40.2500 |'
    assert table[3] == '| J&F-Mean | 0.1000 | - |'
    with pytest.raises(KeyError, match='NoC@90'):
        tool['format_table'](results, ['NoC@90'])
    ckpt = tmp_path / 'x.pth'
    torch.save({'state_dict': {}}, ckpt)
    assert tool['parse_named']([f'a={ckpt}', f'b={ckpt}']) == {'a': str(ckpt), 'b': str(ckpt)}
    for bad, match in (([f'{ckpt}'], 'NAME=PATH'), ([f'a={ckpt}', f'a={ckpt}'], 'twice'),
                       ([f'a={tmp_path}/nope.pth'], 'nope.pth')):
        with pytest.raises((ValueError, FileNotFoundError), match=match):
            tool['parse_named'](bad)


def test_vos_strip_colours_objects_consistently():
    frames = [np.full((8, 10, 3), 100, np.uint8) for _ in range(3)]
    ids = [np.zeros((8, 10), np.uint8) for _ in range(3)]
    for t, m in enumerate(ids):
        m[1:3, t:t + 2] = 1   # object 1 moves right
        m[5:7, 6:8] = 2
        m[0, 9] = 255         # void: not drawn
    strip = draw_vos_strip(frames, ids)
    assert strip.shape[:2] == (8, 30)
    tiles = np.split(strip, 3, axis=1)
    colour1 = [tile[1, t] for t, tile in enumerate(tiles)]
    assert all((c == colour1[0]).all() for c in colour1) and not (colour1[0] == 100).all()
    assert not (tiles[0][5, 6] == colour1[0]).all()  # object 2 has another colour
    assert (tiles[0][0, 9] == 100).all() and (tiles[0][7, 0] == 100).all()
    with pytest.raises(ValueError, match='id map'):
        draw_vos_strip(frames[:1], [np.zeros((4, 4), np.uint8)])


def test_draw_vos_results_cli(tmp_path, monkeypatch):
    frames, results = tmp_path / 'frames', tmp_path / 'results'
    frames.mkdir()
    for t in range(4):
        Image.fromarray(np.full((12, 16, 3), 60 * t, np.uint8)).save(frames / f'{t:05d}.jpg')
        ids = np.zeros((12, 16), np.uint8)
        ids[2:6, t:t + 4] = 1
        write_davis_png(ids, results / f'{t:05d}.png')
    out = tmp_path / 'strip.png'
    _run_main('analysis/draw_vos_results.py', [frames, results, '--out', out, '--num-frames', 2],
              monkeypatch)
    assert Image.open(out).size == (32, 12)
    (results / '00009.png').write_bytes((results / '00000.png').read_bytes())  # no frame 9
    with pytest.raises(SystemExit):
        _run_main('analysis/draw_vos_results.py', [frames, results, '--out', out], monkeypatch)


def test_compare_cli_writes_table_and_json(tmp_path, monkeypatch):
    main = _tool('evaluation/compare_checkpoints.py')['main']
    cfg, ckpt = tmp_path / 'c.py', tmp_path / 'w.pth'
    cfg.write_text('')
    torch.save({'state_dict': {}}, ckpt)
    seen = []

    def fake_evaluate(configs, checkpoints, work_dir):  # the Runner part is covered by tools/test.py
        seen.append((list(configs), dict(checkpoints), work_dir))
        return {name: {'PQ': 10.0 * i} for i, name in enumerate(checkpoints)}

    monkeypatch.setitem(main.__globals__, 'evaluate', fake_evaluate)
    monkeypatch.setattr(sys, 'argv', ['x', '--configs', str(cfg), '--checkpoints', f'a={ckpt}',
                                      f'b={ckpt}', '--work-dir', str(tmp_path / 'w'),
                                      '--out', str(tmp_path / 'm.json'), '--table',
                                      str(tmp_path / 'm.md')])
    main()
    assert seen == [([str(cfg)], {'a': str(ckpt), 'b': str(ckpt)}, str(tmp_path / 'w'))]
    assert (tmp_path / 'm.md').read_text().splitlines()[2] == '| PQ | 0.0000 | 10.0000 |'
    assert '"b"' in (tmp_path / 'm.json').read_text()
