"""tools/evaluation/eval_coco_panoptic.py on the hand-computed PQ case."""
import json

from .test_panoptic_quality import CATEGORIES, _assert_summary, _write_case
from .tool_runner import load_main


def test_cli_writes_the_hand_computed_pq(tmp_path, capsys):
    _write_case(tmp_path)
    main = load_main('eval_coco_panoptic.py')
    (tmp_path / 'cats.json').write_text(json.dumps(list(CATEGORIES.values())))
    main(['--gt-json', str(tmp_path / 'gt.json'), '--gt-folder', str(tmp_path / 'gt'),
          '--pred-json', str(tmp_path / 'pred.json'), '--pred-folder', str(tmp_path / 'pred'),
          '--categories', str(tmp_path / 'cats.json'), '--out', str(tmp_path / 'metrics.json')])
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    _assert_summary(metrics)
    assert metrics['Stuff']['n'] == 1 and 'Things' in capsys.readouterr().out
