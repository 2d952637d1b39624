import pytest
import torch
from torch import nn

from seg.models.backbones.modules import TokenFusionModule, TokenPruner
from seg.registry import MODELS

DIRECTIONS = ['sem_queries_geom', 'geom_queries_sem', 'both']


def _fusion(direction='sem_queries_geom', **kwargs):
    return TokenFusionModule(sem_channels=6, geom_channels=4, embed_dim=8, num_heads=2,
                             direction=direction, **kwargs)


def _perturb_out_proj(fusion):
    """Move the module off its identity initialisation."""
    with torch.no_grad():
        nn.init.normal_(fusion.out_proj.weight)
        nn.init.normal_(fusion.out_proj.bias)
    return fusion


@pytest.mark.parametrize('direction', DIRECTIONS)
@pytest.mark.parametrize('with_pruner', [False, True])
def test_identity_at_initialisation_exactly(direction, with_pruner):
    fusion = _fusion(direction)
    pruner = TokenPruner(0.5, embed_dim=6, score='saliency') if with_pruner else None
    sem, geom = torch.randn(2, 6, 3, 5), torch.randn(2, 4, 6, 10)
    assert torch.equal(fusion(sem, geom, pruner), sem)


@pytest.mark.parametrize('direction', DIRECTIONS)
def test_geometry_changes_the_output_once_trained(direction):
    fusion = _perturb_out_proj(_fusion(direction))
    sem, geom = torch.randn(1, 6, 3, 5), torch.randn(1, 4, 6, 10)
    out = fusion(sem, geom)
    assert out.shape == sem.shape
    assert not torch.allclose(out, sem)
    assert not torch.allclose(fusion(sem, geom + torch.randn_like(geom)), out)


@pytest.mark.parametrize('direction', DIRECTIONS)
def test_pruned_positions_unchanged_kept_positions_match_full_fusion(direction):
    fusion = _perturb_out_proj(_fusion(direction))
    pruner = TokenPruner(0.4, embed_dim=6, score='entropy')
    sem, geom = torch.randn(2, 6, 3, 5), torch.randn(2, 4, 6, 10)
    full = fusion(sem, geom).flatten(2)
    out = fusion(sem, geom, pruner).flatten(2)
    idx = pruner.last_keep_idx
    assert idx.shape == (2, 6)  # ceil(0.4 * 15)
    for b in range(2):
        pruned = sorted(set(range(15)) - set(idx[b].tolist()))
        assert torch.equal(out[b][:, pruned], sem.flatten(2)[b][:, pruned])
        # each semantic query attends independently, so kept tokens get the full-fusion result
        torch.testing.assert_close(out[b][:, idx[b]], full[b][:, idx[b]])


def test_positional_encoding_aligns_grids_of_different_size():
    fusion = _fusion()
    pos_coarse = fusion._pos(torch.zeros(1, 6, 2, 2)).view(2, 2, -1)
    pos_fine = fusion._pos(torch.zeros(1, 4, 6, 6)).view(6, 6, -1)
    # cell centres: coarse cell i sits at (i + 0.5) / 2, fine cell 3i + 1 at (3i + 1.5) / 6
    for i in range(2):
        for j in range(2):
            torch.testing.assert_close(pos_coarse[i, j], pos_fine[3 * i + 1, 3 * j + 1],
                                       atol=1e-4, rtol=0)
    assert not torch.allclose(pos_coarse[0, 0], pos_coarse[1, 1])


@pytest.mark.parametrize('direction', DIRECTIONS)
def test_gradients(direction):
    # at initialisation only out_proj can learn (zero weights block the rest), and it does
    fusion = _fusion(direction)
    sem, geom = torch.randn(1, 6, 3, 5), torch.randn(1, 4, 6, 10)
    fusion(sem, geom).sin().sum().backward()
    assert fusion.out_proj.weight.grad.abs().sum() > 0
    # off the identity every parameter learns, with and without a pruner
    for pruner in (None, TokenPruner(0.5, embed_dim=6)):
        fusion = _perturb_out_proj(_fusion(direction))
        fusion(sem, geom, pruner).sin().sum().backward()
        for name, p in fusion.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_built_from_registry_and_bad_input():
    fusion = MODELS.build(dict(type='TokenFusionModule', sem_channels=6, geom_channels=4,
                               embed_dim=8, num_heads=2, direction='both'))
    assert isinstance(fusion, TokenFusionModule)
    with pytest.raises(ValueError, match='direction'):
        _fusion('geom_only')
    with pytest.raises(ValueError, match='even'):
        TokenFusionModule(6, 4, embed_dim=7, num_heads=1)
    with pytest.raises(ValueError, match=r'sem must be \[B, 6, H, W\]'):
        fusion(torch.randn(1, 5, 3, 3), torch.randn(1, 4, 6, 6))
    with pytest.raises(ValueError, match='geom must be'):
        fusion(torch.randn(1, 6, 3, 3), torch.randn(2, 4, 6, 6))
    with pytest.raises(ValueError, match='embed_dim must be sem_channels=6'):
        fusion(torch.randn(1, 6, 3, 3), torch.randn(1, 4, 6, 6), TokenPruner(0.5, embed_dim=4))
