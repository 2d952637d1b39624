"""seg/cli.py: shipped configs are found by name, and the commands run the shipped tools."""
import pytest

from seg import cli
from tests.conftest import REPO_ROOT

TINY = REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py'


def test_resource_root_is_the_checkout_in_an_editable_install():
    assert cli.resource_root() == REPO_ROOT


@pytest.mark.parametrize('name', ['fastsam2/model_fastsam2_tiny.py',
                                  'configs/fastsam2/model_fastsam2_tiny.py'])
def test_config_path_finds_shipped_configs_by_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not relative to the working directory
    assert cli.config_path(name) == str(TINY)


def test_config_path_prefers_an_existing_file_and_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'fastsam2').mkdir()
    (tmp_path / 'fastsam2/model_fastsam2_tiny.py').write_text('x = 1\n')
    assert cli.config_path('fastsam2/model_fastsam2_tiny.py') == 'fastsam2/model_fastsam2_tiny.py'
    with pytest.raises(FileNotFoundError, match='nope.py.*shipped config'):
        cli.config_path('nope.py')


def test_tool_arguments_naming_shipped_configs_are_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = cli._resolve_configs(['fastsam2/model_fastsam2_tiny.py', 'ckpt.pth',
                                 '--config=fastsam2/model_fastsam2_tiny.py', '--config',
                                 'configs/fastsam2/model_fastsam2_tiny.py', 'missing.py', '--x=1'])
    assert args == [str(TINY), 'ckpt.pth', f'--config={TINY}', '--config', str(TINY), 'missing.py',
                    '--x=1']


def test_commands_run_the_shipped_tools(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(['test', '--help'])
    assert exit_.value.code == 0 and '--show-dir' in capsys.readouterr().out
    for script, _ in cli.COMMANDS.values():
        assert (REPO_ROOT / script).is_file(), script
    with pytest.raises(SystemExit, match="unknown command 'tarin'"):
        cli.main(['tarin'])
    cli.main(['configs'])
    listed = capsys.readouterr().out.split()
    assert 'fastsam2/model_fastsam2_tiny.py' in listed and not any('_base_' in n for n in listed)
