import dataclasses

import pytest

from seg.models.utils import RouteDecision, TaskRouter
from seg.registry import MODELS


@pytest.fixture
def router():
    return MODELS.build(dict(type='TaskRouter'))


def test_interactive_image_runs_prompt_queries_with_fewer_stages(router):
    d = router.route('interactive', {'point'}, num_frames=1)
    assert d == RouteDecision(num_stages=2, query_set='prompt', use_memory=False, use_pruner=False)
    assert d.num_stages < router.route('panoptic', set(), 1).num_stages
    # clicks on a video track the object through the memory
    assert router.route('interactive', {'box', 'text'}, num_frames=8).use_memory


def test_interactive_without_prompts_is_an_error(router):
    for prompts in (set(), {'none'}):
        with pytest.raises(ValueError, match='needs at least one prompt'):
            router.route('interactive', prompts, 1)


def test_panoptic_runs_object_queries_and_all_stages(router):
    assert router.route('panoptic', set(), 1) == RouteDecision(3, 'object', False, False)
    # prompts on a panoptic image add their queries to the object queries
    assert router.route('panoptic', {'text'}, 1).query_set == 'both'


def test_vos_turns_memory_on_even_for_one_streamed_frame(router):
    assert router.route('vos', {'mask'}, num_frames=1) == RouteDecision(3, 'prompt', True, False)
    assert router.route('vos', set(), num_frames=12).use_memory


def test_rules_from_config_override_key_by_key():
    router = TaskRouter(rules=dict(
        interactive=dict(num_stages=1),
        caption=dict(num_stages=1, query_set='object', unprompted_query_set='object',
                     use_memory=False, memory_min_frames=1, use_pruner=True)))
    d = router.route('interactive', {'point'}, 1)
    assert d.num_stages == 1 and d.query_set == 'prompt'  # other keys keep their defaults
    assert router.route('caption', set(), 1).query_set == 'object'
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.num_stages = 3


@pytest.mark.parametrize('rules,match', [
    (dict(interactive=dict(stages=1)), 'unknown rule key'),
    (dict(caption=dict(num_stages=1)), 'must set every rule key'),
    (dict(vos=dict(num_stages=0)), 'num_stages'),
    (dict(vos=dict(query_set='all')), 'query_set'),
    (dict(vos=dict(use_memory='yes')), 'use_memory'),
])
def test_bad_rules(rules, match):
    with pytest.raises(ValueError, match=match):
        TaskRouter(rules=rules)


def test_bad_route_input(router):
    with pytest.raises(ValueError, match="unknown mode 'tracking'"):
        router.route('tracking', {'point'}, 1)
    with pytest.raises(ValueError, match=r"unknown prompt type\(s\) \['scribble'\]"):
        router.route('interactive', {'point', 'scribble'}, 1)
    with pytest.raises(ValueError, match='num_frames'):
        router.route('vos', {'point'}, 0)
    # called as a module, it routes too
    assert router('panoptic', set(), 1) == router.route('panoptic', set(), 1)
