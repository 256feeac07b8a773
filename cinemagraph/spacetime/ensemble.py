"""Output ensembles of residual :class:`~cinemagraph.spacetime.network.SpaceTimeModel` s."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from ..render.decode import SplattedFrame
from .network import SpaceTimeModel
from .rules import RuleInputs


class SpaceTimeEnsemble(nn.Module):
    """The frames of residual models mixed by fixed ``weights`` (normalised to sum to 1).
    The members share preset and rules, so the mix applies where each would correct.

    Each member's feature network sees the same layers; their features go side by side after
    the shared ``[RGB, 1]`` (:meth:`features`), so one splat carries all of them (splatting is
    linear per channel), and :meth:`decode_batch` hands each member its own channels and the
    rules' inputs, made once. The frames equal those of rendering once with each member and
    mixing them."""

    def __init__(self, members: list[SpaceTimeModel], weights: list[float]):
        super().__init__()
        if len(members) < 2 or len(weights) != len(members):
            raise ValueError("an ensemble needs two or more members and one weight each")
        if not all(m.residual for m in members):
            raise ValueError("only residual presets (base, small) make an ensemble")
        if not all(w > 0 for w in weights):
            raise ValueError("give each member a weight above 0")
        for name in ("preset", "rules"):
            values = {repr(getattr(m, name)) for m in members}
            if len(values) > 1:
                raise ValueError(f"the members differ in {name} ({', '.join(sorted(values))})")
        self.members = nn.ModuleList(members)
        total = float(sum(weights))
        self.weights = tuple(float(w) / total for w in weights)
        self.preset, self.rules, self.residual = members[0].preset, members[0].rules, True

    @property
    def feature_channels(self) -> int:
        return sum(m.feature_channels for m in self.members)

    # ``[RGB, 1]`` and the feature map, as one network's (here every member's, in order).
    features = SpaceTimeModel.features
    rule_inputs = SpaceTimeModel.rule_inputs

    def feature_map(self, rgba: Tensor) -> Tensor:
        """Every member's feature map of ``rgba``, side by side in member order."""
        return torch.cat([m.feature_map(rgba) for m in self.members], dim=1)

    def _member_frame(self, frame: SplattedFrame | None, i: int) -> SplattedFrame | None:
        if frame is None:
            return None
        start = 4 + sum(m.feature_channels for m in self.members[:i])
        own = frame.features[:, start:start + self.members[i].feature_channels]
        return frame._replace(features=torch.cat([frame.features[:, :4], own], 1))

    def decode(self, forward: SplattedFrame, backward: SplattedFrame | None, time: float) -> Tensor:
        return self.decode_batch([forward], [backward], [time])

    def decode_batch(self, forwards: list[SplattedFrame], backwards: list[SplattedFrame | None],
                     times: list[float], inputs: RuleInputs | None = None) -> Tensor:
        """The members' frames (each in ``[0, 1]``) mixed by :attr:`weights`."""
        if inputs is None:
            inputs = self.rule_inputs(forwards, backwards, times)
        frames = [m.decode_batch([self._member_frame(f, i) for f in forwards],
                                 [self._member_frame(b, i) for b in backwards], times, inputs)
                  for i, m in enumerate(self.members)]
        return sum(w * f for w, f in zip(self.weights, frames)).clamp(0, 1)
