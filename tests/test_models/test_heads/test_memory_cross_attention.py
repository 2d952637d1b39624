import pytest
import torch

from seg.models.heads import MemoryCrossAttention

C, D = 16, 8


def _reader() -> MemoryCrossAttention:
    reader = MemoryCrossAttention(embed_dim=C, memory_dim=D, num_heads=2)
    reader.init_weights()
    return reader.eval()


def test_identity_at_init_even_after_init_weights():
    reader = _reader()
    q = torch.randn(3, C)
    out = reader(q, torch.randn(3, 4, D), torch.ones(3, 4, dtype=torch.bool), torch.randint(0, 9, (3, 4)))
    assert torch.equal(out, q)


def test_reads_valid_entries_only_and_sees_their_age():
    reader = _reader()
    torch.nn.init.normal_(reader.out_proj.weight)
    q, mem = torch.randn(2, C), torch.randn(2, 3, D)
    valid = torch.tensor([[True, True, False], [True, False, False]])
    age = torch.tensor([[5, 1, 0], [2, 0, 0]])
    with torch.no_grad():
        base = reader(q, mem, valid, age)
        assert not torch.allclose(base, q)
        # padding entries do not matter
        mem2 = mem.clone()
        mem2[0, 2] += 10
        mem2[1, 1:] -= 10
        torch.testing.assert_close(reader(q, mem2, valid, age), base)
        # a valid entry's content and its age do
        mem3 = mem.clone()
        mem3[0, 1] += 1
        assert not torch.allclose(reader(q, mem3, valid, age)[0], base[0])
        older = age.clone()
        older[0, 1] = 40
        assert not torch.allclose(reader(q, mem, valid, older)[0], base[0])
        # each object reads its own entries only
        torch.testing.assert_close(reader(q[1:], mem[1:], valid[1:], age[1:]), base[1:])


def test_bad_input():
    reader = _reader()
    ok = dict(query=torch.randn(2, C), memory=torch.randn(2, 3, D),
              valid=torch.ones(2, 3, dtype=torch.bool), age=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r'query must be \[K, 16\]'):
        reader(**{**ok, 'query': torch.randn(2, C + 1)})
    with pytest.raises(ValueError, match=r'memory must be \[2, M, 8\]'):
        reader(**{**ok, 'memory': torch.randn(2, 3, D + 1)})
    with pytest.raises(ValueError, match='valid and age'):
        reader(**{**ok, 'age': torch.zeros(2, 4)})
    no_entry = ok['valid'].clone()
    no_entry[1] = False
    with pytest.raises(ValueError, match='no valid memory entry'):
        reader(**{**ok, 'valid': no_entry})
