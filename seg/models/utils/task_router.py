"""TaskRouter: decide, once per forward, how much of the model a task needs."""
import copy
from dataclasses import dataclass
from typing import Dict, Iterable, Optional

from torch import nn

from seg.registry import MODELS

MODES = ('interactive', 'vos', 'panoptic')
PROMPT_TYPES = ('point', 'box', 'text', 'mask')
QUERY_SETS = ('prompt', 'object', 'both')

# Per mode:
#   num_stages           decoder stages to run
#   query_set            active queries when prompts are given
#   unprompted_query_set active queries without prompts; None = prompts are required
#   use_memory           streaming memory wanted by the mode ...
#   memory_min_frames    ... once the input has at least this many frames
#   use_pruner           token pruning in the backbone
DEFAULT_RULES: Dict[str, dict] = dict(
    # a click or box on an image: the prompt queries alone, fewer stages for latency;
    # clicks on a video (>= 2 frames) track the object with memory. No token pruning by default
    # (here and for vos): on the RN50 tower it restricts only the fusion update, ~2 % of the
    # encoder, but moved single-click masks by 11 % IoU (mean agreement with the unpruned masks
    # 0.86-0.89 on held-out DAVIS frames, docs/benchmarks/NOTES.md section 15); a config can
    # turn it on per mode
    interactive=dict(num_stages=2, query_set='prompt', unprompted_query_set=None,
                     use_memory=True, memory_min_frames=2, use_pruner=False),
    # video object segmentation: objects prompted on some frame are followed on later, unprompted
    # frames by their per-object (prompt) queries fed from the memory, which is on even for a single
    # streamed frame
    vos=dict(num_stages=3, query_set='prompt', unprompted_query_set='prompt',
             use_memory=True, memory_min_frames=1, use_pruner=False),
    # panoptic: every object query and every stage; prompts, if any, add their queries
    panoptic=dict(num_stages=3, query_set='both', unprompted_query_set='object',
                  use_memory=False, memory_min_frames=1, use_pruner=False),
)
RULE_KEYS = frozenset(DEFAULT_RULES['interactive'])


@dataclass(frozen=True)
class RouteDecision:
    """What the head and backbone run for one forward.

    ``query_set``: ``'prompt'`` (prompt queries only), ``'object'`` (learned object queries only)
    or ``'both'``.
    """
    num_stages: int
    query_set: str
    use_memory: bool
    use_pruner: bool


@MODELS.register_module()
class TaskRouter(nn.Module):
    """Route a forward by mode, prompt types and number of frames (no parameters).

    Args:
        rules: per-mode overrides merged over ``DEFAULT_RULES`` key by key, e.g.
            ``dict(interactive=dict(num_stages=1))``; a new mode must give every key of
            ``RULE_KEYS``.
    """

    def __init__(self, rules: Optional[Dict[str, dict]] = None) -> None:
        super().__init__()
        self.rules = copy.deepcopy(DEFAULT_RULES)
        for mode, override in (rules or {}).items():
            unknown = set(override) - RULE_KEYS
            if unknown:
                raise ValueError(f'TaskRouter: unknown rule key(s) {sorted(unknown)} for mode '
                                 f'{mode!r}; allowed: {sorted(RULE_KEYS)}')
            if mode not in self.rules and set(override) != RULE_KEYS:
                raise ValueError(f'TaskRouter: new mode {mode!r} must set every rule key; missing '
                                 f'{sorted(RULE_KEYS - set(override))}')
            self.rules[mode] = {**self.rules.get(mode, {}), **override}
        for mode, rule in self.rules.items():
            self._check_rule(mode, rule)

    def route(self, mode: str, prompt_types: Iterable[str], num_frames: int = 1) -> RouteDecision:
        """Decide for one forward.

        Args:
            mode: a key of the rules (``'interactive'``, ``'vos'``, ``'panoptic'`` by default).
            prompt_types: the prompt kinds present, a subset of ``PROMPT_TYPES``; empty (or
                ``{'none'}``) for no prompts.
            num_frames: frames in the input clip (1 for an image or a streamed frame).
        """
        if mode not in self.rules:
            raise ValueError(f'TaskRouter: unknown mode {mode!r}; known: {sorted(self.rules)}')
        types = set(prompt_types) - {'none'}
        unknown = types - set(PROMPT_TYPES)
        if unknown:
            raise ValueError(f'TaskRouter: unknown prompt type(s) {sorted(unknown)}; allowed: '
                             f'{list(PROMPT_TYPES)} or none')
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f'TaskRouter: num_frames must be a positive int, got {num_frames!r}')
        rule = self.rules[mode]
        query_set = rule['query_set'] if types else rule['unprompted_query_set']
        if query_set is None:
            raise ValueError(f'TaskRouter: mode {mode!r} needs at least one prompt of '
                             f'{list(PROMPT_TYPES)}, got none')
        return RouteDecision(
            num_stages=rule['num_stages'],
            query_set=query_set,
            use_memory=rule['use_memory'] and num_frames >= rule['memory_min_frames'],
            use_pruner=rule['use_pruner'])

    forward = route

    @staticmethod
    def _check_rule(mode: str, rule: dict) -> None:
        if not isinstance(rule['num_stages'], int) or rule['num_stages'] < 1:
            raise ValueError(f'TaskRouter: {mode}.num_stages must be a positive int, got '
                             f'{rule["num_stages"]!r}')
        if rule['query_set'] not in QUERY_SETS:
            raise ValueError(f'TaskRouter: {mode}.query_set must be one of {QUERY_SETS}, got '
                             f'{rule["query_set"]!r}')
        if rule['unprompted_query_set'] not in (None, *QUERY_SETS):
            raise ValueError(f'TaskRouter: {mode}.unprompted_query_set must be None or one of '
                             f'{QUERY_SETS}, got {rule["unprompted_query_set"]!r}')
        if not isinstance(rule['memory_min_frames'], int) or rule['memory_min_frames'] < 1:
            raise ValueError(f'TaskRouter: {mode}.memory_min_frames must be a positive int, got '
                             f'{rule["memory_min_frames"]!r}')
        for key in ('use_memory', 'use_pruner'):
            if not isinstance(rule[key], bool):
                raise ValueError(f'TaskRouter: {mode}.{key} must be a bool, got {rule[key]!r}')
