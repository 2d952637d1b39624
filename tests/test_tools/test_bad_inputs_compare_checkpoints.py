"""Bad inputs to tools/evaluation/compare_checkpoints.py: rejected before any test loop runs
(``evaluate`` is replaced by a recorder), naming the flag / checkpoint / path."""
import re

import pytest
import torch

from tests.conftest import load_script


@pytest.fixture
def tool(monkeypatch):
    module = load_script('tools/evaluation/compare_checkpoints.py')
    module.calls = []

    def fake_evaluate(configs, checkpoints, work_dir):  # the Runner part: tools/test.py's tests
        module.calls.append(checkpoints)
        return {name: {'PQ': 1.0} for name in checkpoints}

    monkeypatch.setattr(module, 'evaluate', fake_evaluate)
    return module


def _valid(root):
    (root / 'a').mkdir()
    (root / 'a' / 'cfg.py').write_text('')
    torch.save({'state_dict': {}}, root / 'w.pth')
    return root


def _argv(root, *extra, ckpt='a={root}/w.pth'):
    argv = ['--configs', str(root / 'a' / 'cfg.py'), '--checkpoints', ckpt,
            '--work-dir', str(root / 'wd'), *extra]
    return [a.replace('{root}', str(root)) for a in argv]


CASES = {
    'checkpoint without a name': (None, dict(ckpt='{root}/w.pth'), ValueError,
                                  'NAME=PATH pairs'),
    'checkpoint missing': (None, dict(ckpt='a={root}/nope.pth'), FileNotFoundError,
                           "checkpoint 'a' not found: .*nope.pth"),
    'checkpoint empty': (lambda r: (r / 'e.pth').write_bytes(b''), dict(ckpt='a={root}/e.pth'),
                         ValueError, "checkpoint 'a' .*e.pth is empty"),
    'checkpoint a folder': (None, dict(ckpt='a={root}/a'), ValueError, 'is a folder'),
    'checkpoint not a torch file': (lambda r: (r / 't.pth').write_text('hello'),
                                    dict(ckpt='a={root}/t.pth'), ValueError,
                                    'is not a PyTorch checkpoint'),
    'checkpoint truncated': (lambda r: (r / 't.pth').write_bytes(
        (r / 'w.pth').read_bytes()[:200]), dict(ckpt='a={root}/t.pth'), ValueError,
        'is not a PyTorch checkpoint'),
    '--work-dir is a file': (lambda r: (r / 'wd').write_text('x'), {}, ValueError,
                             '--work-dir .* is an existing file'),
    '--out is a folder': (lambda r: (r / 'o').mkdir(), dict(extra=['--out', '{root}/o']),
                          ValueError, '--out .* is an existing folder'),
    '--table under a file': (lambda r: (r / 'f').write_text('x'),
                             dict(extra=['--table', '{root}/f/t.md']), ValueError,
                             'is a file, not a folder'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input(tool, tmp_path, case):
    root = _valid(tmp_path)
    mutate, kw, error, match = CASES[case]
    if mutate is not None:
        mutate(root)
    with pytest.raises(error, match=match):
        tool.main(_argv(root, *kw.get('extra', []), ckpt=kw.get('ckpt', 'a={root}/w.pth')))
    assert tool.calls == []


def test_same_name_twice(tool, tmp_path):
    root = _valid(tmp_path)
    with pytest.raises(ValueError, match="name 'a' given twice"):
        argv = _argv(root)
        tool.main(argv[:4] + [f'a={root}/w.pth'] + argv[4:])


@pytest.mark.parametrize('configs,match', [
    (['{root}/nope.py'], 'config file not found: .*nope.py'),
    (['{root}/a/cfg.py', '{root}/b/cfg.py'], "two configs share a file name \\(\\['cfg', 'cfg'\\]"),
])
def test_bad_configs_are_argparse_errors(tool, tmp_path, capsys, configs, match):
    root = _valid(tmp_path)
    (root / 'b').mkdir()
    (root / 'b' / 'cfg.py').write_text('')
    argv = _argv(root)
    argv[1:2] = [c.replace('{root}', str(root)) for c in configs]
    with pytest.raises(SystemExit) as e:
        tool.main(argv)
    assert e.value.code == 2 and re.search(match, capsys.readouterr().err)
    assert tool.calls == []


def test_unreported_table_key(tool, tmp_path):
    root = _valid(tmp_path)
    with pytest.raises(KeyError, match=r"metrics \['NoC@90'\] were not reported; reported: \['PQ'\]"):
        tool.main(_argv(root, '--keys', 'NoC@90'))


def test_valid_case(tool, tmp_path, capsys):
    root = _valid(tmp_path)
    tool.main(_argv(root, '--out', '{root}/m.json'))
    assert tool.calls == [{'a': str(root / 'w.pth')}] and (root / 'm.json').is_file()
    assert '| PQ | 1.0000 |' in capsys.readouterr().out
