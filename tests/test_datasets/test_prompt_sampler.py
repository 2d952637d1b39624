"""PromptSampler: where clicks land, what boxes cover, what texts say, and determinism."""
import cv2
import numpy as np
import pytest

from seg.datasets.prompt_sampler import PromptSampler, category_words, readable_name
from seg.utils.masks import mask_to_box


def _blob(h=60, w=80) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    cv2.circle(mask.view(np.uint8), (30, 25), 12, 1, -1)
    mask[25:40, 30:55] = True
    return mask


def test_readable_names_and_synonyms():
    assert readable_name('wall-other-merged') == 'wall'
    assert readable_name('playingfield') == 'playingfield'
    assert readable_name('tree-merged') == 'tree'
    assert readable_name('cell phone') == 'cell phone'
    assert 'sofa' in category_words('couch')
    assert category_words('giraffe') == ('giraffe', )


def test_points_inside_negatives_in_the_ring_and_box_covers_mask():
    mask = _blob()
    sampler = PromptSampler(num_pos_points=(3, 3), num_neg_points=(4, 4), point_prob=1.0,
                            box_prob=1.0, box_jitter=0.2, neg_band=0.0, neg_band_min=4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = sampler(mask, rng)
        pts, lab = out['points'].astype(int), out['point_labels']
        assert lab.tolist() == [1, 1, 1, 0, 0, 0, 0]
        assert mask[pts[lab == 1, 1], pts[lab == 1, 0]].all()
        neg = pts[lab == 0]
        assert not mask[neg[:, 1], neg[:, 0]].any()
        # every negative lies within the 4 px ring: its distance to the mask is at most 4
        dist_to_mask = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
        assert (dist_to_mask[neg[:, 1], neg[:, 0]] <= 4.5).all()
        x1, y1, x2, y2 = out['box']
        bx1, by1, bx2, by2 = mask_to_box(mask)
        assert x1 <= bx1 and y1 <= by1 and x2 >= bx2 and y2 >= by2
        # jitter is at most 20 % of the side, outward
        assert bx1 - x1 <= 0.2 * (bx2 - bx1) + 1e-4 and y2 - by2 <= 0.2 * (by2 - by1) + 1e-4
        assert len({tuple(p) for p in pts}) == len(pts)  # distinct clicks


def test_zero_jitter_gives_the_tight_box():
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:25] = True
    out = PromptSampler(box_prob=1.0, box_jitter=0.0)(mask, np.random.default_rng(1))
    assert out['box'].tolist() == [10, 5, 25, 9]


def test_box_is_clipped_to_the_image():
    mask = np.ones((10, 12), bool)
    out = PromptSampler(box_prob=1.0, box_jitter=0.5, num_neg_points=(3, 3))(
        mask, np.random.default_rng(2))
    assert out['box'].tolist() == [0, 0, 12, 10]
    assert (out['point_labels'] == 0).sum() == 0  # no room outside a full-image mask


def test_interior_bias_moves_clicks_away_from_the_border():
    mask = np.zeros((61, 61), bool)
    mask[10:51, 10:51] = True
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]

    def mean_dist(power: float) -> float:
        s = PromptSampler(interior_power=power)
        pts = s.positive_points(mask, 400, np.random.default_rng(0)).astype(int)
        return float(dist[pts[:, 1], pts[:, 0]].mean())

    # uniform over a 41x41 square: mean distance to the border is about 41 / 6 ~ 7
    assert 5.5 < mean_dist(0.0) < 8.5
    assert mean_dist(2.0) > mean_dist(0.0) + 3


def test_single_pixel_mask_gets_one_click():
    mask = np.zeros((9, 9), bool)
    mask[4, 6] = True
    pts = PromptSampler().positive_points(mask, 3, np.random.default_rng(0))
    assert pts.tolist() == [[6, 4]]


def test_text_names_the_category():
    sampler = PromptSampler(point_prob=0.0, box_prob=0.0, text_prob=1.0)
    rng = np.random.default_rng(3)
    for name in ('couch', 'wall-other-merged', 'giraffe'):
        for _ in range(5):
            out = sampler(_blob(), rng, class_name=name)
            assert any(w in out['text'] for w in category_words(name))
            assert len(out['points']) == 0 and out['box'] is None


def test_some_prompt_is_always_drawn():
    out = PromptSampler(point_prob=0.0, box_prob=0.0, text_prob=0.0)(_blob(), np.random.default_rng(0))
    assert (out['point_labels'] == 1).sum() >= 1


def test_same_seed_same_prompt_other_seed_differs():
    sampler = PromptSampler(num_pos_points=(1, 5), num_neg_points=(0, 3))

    def draw(seed):
        rng = np.random.default_rng(seed)
        return [sampler(_blob(), rng, class_name='person') for _ in range(5)]

    a, b, c = draw(7), draw(7), draw(8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x['points'], y['points'])
        assert x['text'] == y['text'] and (x['box'] is None) == (y['box'] is None)
    assert any(not np.array_equal(x['points'], z['points']) for x, z in zip(a, c))


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_pos_points=(3, 1)), 'num_pos_points'),
    (dict(box_prob=1.5), 'box_prob'),
    (dict(templates=('no slot', )), 'templates'),
    (dict(box_jitter=-0.1), 'box_jitter'),
])
def test_bad_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PromptSampler(**kwargs)


def test_bad_masks_are_rejected():
    with pytest.raises(ValueError, match='empty'):
        PromptSampler()(np.zeros((4, 4), bool), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r'\[H, W\]'):
        PromptSampler()(np.ones((2, 4, 4), bool), np.random.default_rng(0))
