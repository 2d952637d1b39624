"""Console entry points: ``fastsam2 COMMAND [ARGS]`` and ``fastsam2-COMMAND [ARGS]`` run the shipped
tools (``tools/train.py`` ...) with ``ARGS``, from a checkout or from an installed wheel.

A wheel carries ``configs/``, ``tools/`` and ``demo/`` as ``seg/.mim/`` (see ``setup.py``; the
layout OpenMMLab's ``mim`` uses); an editable install or a checkout has them beside ``seg/``. A
``*.py`` argument that is not an existing file but names a shipped config (``fastsam2/model_fastsam2_tiny.py``
or ``configs/fastsam2/model_fastsam2_tiny.py``) is replaced by that config's path, so

    fastsam2 test fastsam2/toy/eval_toy.py work_dirs/stage4/iter_200.pth

works from any directory.
"""
import os
import runpy
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

# command -> (script under the resource root, what it does)
COMMANDS: Dict[str, tuple] = {
    'train': ('tools/train.py', 'train a config with mmengine\'s Runner (mmdet\'s tools/train.py flags)'),
    'distill': ('tools/train_fast_sam2.py', 'train one stage of the SAM2 distillation recipe'),
    'test': ('tools/test.py', 'evaluate a checkpoint with the config\'s test dataloader and metrics'),
    'demo': ('demo/demo.py', 'run a task on an image, a video or a frame folder'),
    'benchmark': ('tools/benchmark/benchmark_realtime.py', 'time every task per resolution'),
    'export': ('tools/deployment/export_onnx.py', 'export the model to ONNX'),
    'serve': ('tools/serve.py', 'serve the predictors over HTTP'),
}


def resource_root() -> Path:
    """The folder holding ``configs/``, ``tools/`` and ``demo/``: ``seg/.mim`` in a wheel, else the
    checkout ``seg/`` lives in."""
    package = Path(__file__).resolve().parent
    for root in (package / '.mim', package.parent):
        if (root / 'configs').is_dir() and (root / 'tools').is_dir():
            return root
    raise FileNotFoundError(f'neither {package / ".mim"} nor {package.parent} holds configs/ and tools/: '
                            'install the fastsam2 wheel or run from a checkout')


def config_path(name: str) -> str:
    """Path of a config: ``name`` itself when it is a file, else the shipped config it names
    (relative to ``configs/``, with or without the ``configs/`` prefix)."""
    if os.path.isfile(name):
        return name
    configs = resource_root() / 'configs'
    relative = Path(name)
    if relative.parts[:1] == ('configs', ):
        relative = Path(*relative.parts[1:])
    candidate = configs / relative
    if not relative.is_absolute() and candidate.is_file():
        return str(candidate)
    raise FileNotFoundError(f'config {name!r} is neither a file nor a shipped config under {configs}')


def _resolve_configs(argv: Sequence[str]) -> List[str]:
    """Replace the ``*.py`` arguments (also ``--opt=X.py``) that name shipped configs."""
    def resolve(value: str) -> str:
        if not value.endswith('.py') or os.path.exists(value):
            return value
        try:
            return config_path(value)
        except FileNotFoundError:
            return value  # the tool reports the missing file with its own message
    out = []
    for arg in argv:
        if arg.startswith('--') and '=' in arg:
            key, value = arg.split('=', 1)
            out.append(f'{key}={resolve(value)}')
        else:
            out.append(resolve(arg))
    return out


def run_command(command: str, argv: Sequence[str]) -> None:
    """Run a tool as ``python <script> ARGS`` would, in this process."""
    if command not in COMMANDS:
        raise SystemExit(f'fastsam2: unknown command {command!r}; one of {", ".join(COMMANDS)}')
    script = resource_root() / COMMANDS[command][0]
    if not script.is_file():
        raise SystemExit(f'fastsam2 {command}: {script} is missing from this installation')
    sys.argv = [str(script), *_resolve_configs(argv)]
    runpy.run_path(str(script), run_name='__main__')


def _usage() -> str:
    lines = ['usage: fastsam2 COMMAND [ARGS]   (fastsam2 COMMAND --help for its arguments)', '',
             'commands:']
    lines += [f'  {name:<10} {help_}' for name, (_, help_) in COMMANDS.items()]
    lines += ['  configs    list the shipped configs (their paths are accepted anywhere a config is)',
              '  root       print the folder holding the shipped configs/, tools/ and demo/']
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``fastsam2 COMMAND [ARGS]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(_usage())
        return
    command, rest = argv[0], argv[1:]
    if command == 'root':
        print(resource_root())
    elif command == 'configs':
        configs = resource_root() / 'configs'
        for path in sorted(configs.rglob('*.py')):
            if '_base_' not in path.parts and path.name != '__init__.py':
                print(path.relative_to(configs).as_posix())
    else:
        run_command(command, rest)


def _entry(command: str):
    def entry() -> None:
        run_command(command, sys.argv[1:])
    entry.__name__ = command
    entry.__doc__ = f'``fastsam2-{command} ARGS`` = ``fastsam2 {command} ARGS``.'
    return entry


train = _entry('train')
test = _entry('test')
demo = _entry('demo')
benchmark = _entry('benchmark')
serve = _entry('serve')


if __name__ == '__main__':
    main()
