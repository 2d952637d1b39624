"""tools/evaluation/eval_davis.py on a DAVIS-2017-layout root built from the shared DAVIS-2016
sequences, with the copy-the-first-frame baseline."""
import json

import numpy as np
import pytest
from PIL import Image

from seg.evaluation.davis import contour_accuracy

from .tool_runner import load_main

SEQUENCES = ('horsejump-high', 'drift-chicane')


def build_davis2017_root(davis2016, root, sequences):
    """Symlinked DAVIS-2017 layout: Annotations/480p/<seq>, JPEGImages, ImageSets/2017/val.txt."""
    for kind in ('Annotations', 'JPEGImages'):
        (root / kind / '480p').mkdir(parents=True)
        for seq in sequences:
            (root / kind / '480p' / seq).symlink_to(davis2016 / kind / '480p' / seq)
    (root / 'ImageSets' / '2017').mkdir(parents=True)
    (root / 'ImageSets' / '2017' / 'val.txt').write_text('\n'.join(sequences) + '\n')


def write_copy_first_frame(root, results, sequences):
    """The baseline: every frame's result is the first GT frame's mask."""
    for seq in sequences:
        frames = sorted((root / 'Annotations' / '480p' / seq).glob('*.png'))
        first = (np.array(Image.open(frames[0])) > 0).astype(np.uint8)
        (results / seq).mkdir(parents=True)
        for frame in frames:
            Image.fromarray(first).save(results / seq / frame.name)


def test_copy_first_frame_baseline(shared_data, tmp_path, capsys):
    root, results = tmp_path / 'davis', tmp_path / 'results'
    build_davis2017_root(shared_data / 'davis2016', root, SEQUENCES)
    write_copy_first_frame(root, results, SEQUENCES)
    main = load_main('eval_davis.py')
    argv = ['--davis-root', str(root), '--results', str(results), '--set', 'val', '--year', '2017',
            '--out', str(tmp_path / 'metrics.json')]
    with pytest.raises(ValueError, match='--davis2016'):
        main(argv)
    main(argv + ['--davis2016'])
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    j_means, f_means = [], []
    for seq in SEQUENCES:
        frames = sorted((root / 'Annotations' / '480p' / seq).glob('*.png'))
        first = np.array(Image.open(frames[0])) > 0
        gts = [np.array(Image.open(f)) > 0 for f in frames[1:-1]]
        j = [np.logical_and(g, first).sum() / np.logical_or(g, first).sum() for g in gts]
        j_means.append(np.mean(j))
        f_means.append(np.mean([contour_accuracy(g, first) for g in gts]))
        assert metrics['per_object'][f'{seq}_1']['J-Mean'] == pytest.approx(j_means[-1])
    assert metrics['J-Mean'] == pytest.approx(np.mean(j_means))
    assert metrics['F-Mean'] == pytest.approx(np.mean(f_means))
    assert metrics['J&F-Mean'] == pytest.approx((np.mean(j_means) + np.mean(f_means)) / 2)
    assert set(metrics['seconds_per_sequence']) == set(SEQUENCES)
    printed = capsys.readouterr().out
    assert 'J&F-Mean' in printed and 'horsejump-high_1' in printed
