import torch

from cinemagraph.render.blend import symmetric_blend_weight


def test_blend_weights_at_start_middle_and_end():
    a = torch.full((1, 1, 2, 2), 0.8)
    d = torch.full((1, 1, 2, 2), 2.0)
    assert torch.all(symmetric_blend_weight(a, d, a, d, 0.0) == 1.0)
    assert torch.allclose(symmetric_blend_weight(a, d, a, d, 0.5), torch.full_like(a, 0.5))
    assert torch.all(symmetric_blend_weight(a, d, a, d, 1.0) == 0.0)


def test_blend_prefers_the_nearer_and_more_opaque_splat_and_matches_the_formula():
    af, df = torch.tensor([0.9]).view(1, 1, 1, 1), torch.tensor([1.0]).view(1, 1, 1, 1)
    ab, db = torch.tensor([0.6]).view(1, 1, 1, 1), torch.tensor([60.0]).view(1, 1, 1, 1)
    t = 0.3
    w = symmetric_blend_weight(af, df, ab, db, t)
    num = (1 - t) * 0.9 * torch.exp(torch.tensor(-1.0, dtype=torch.float64))
    den = num + t * 0.6 * torch.exp(torch.tensor(-60.0, dtype=torch.float64))
    assert torch.allclose(w.double(), (num / den).view(1, 1, 1, 1), atol=1e-6)
    # Large depths do not underflow into NaN.
    far = symmetric_blend_weight(af, df + 200, ab, db + 200, 0.5)
    assert torch.isfinite(far).all()
