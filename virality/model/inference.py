"""A faster forward pass for scoring: the same numbers as the modules' ``forward``, in fewer
passes over memory.

Scoring (``Predictor.raw_scores`` and ``Predictor.fit_percent``: the Batch page, ``score``,
What-if's searches) needs no autograd and no module hooks, so it can run the networks as a
few plain matrix products on weights rearranged once:

- an ensemble's first layer (every member reads the same input) is one matrix product with
  the members' weights side by side, ``(n, d) @ (d, k·h)``, instead of a batched product over
  ``k`` copies of the input;
- TabM's per-member adapters (±1 per input column) are folded into per-member copies of the
  shared first layer, so the ``(k, n, 104)`` adapted inputs are never built; its shared
  layers run as one ``(n·k, h)`` product;
- activations are applied in place (no new tensor per ReLU);
- the TikTok-fit model's parts, which share their input transform, run as one ensemble
  (``virality.model.fit.fit_plan``, built on ``EnsemblePlan``).

Attribution (Captum) and training keep using the modules: their hooks need module ReLUs and
they need gradients. ``tests/test_inference.py`` holds both paths to the same outputs (within
1e-4 points) for every architecture; ``benchmarks/score_memory.py`` measures the speed (its
"forward passes" line: a few percent faster than the modules at the same chunk size, one run).
Architectures without a fast plan (the additive network) run their module.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from virality.chunks import row_chunks
from virality.model.networks import Blend, EnsembleLinear, MLPEnsemble, TabMNetwork, ViralityModel

Forward = Callable[[torch.Tensor], torch.Tensor]


class EnsemblePlan:
    """``k`` MLPs (d → h → … → 1, ReLU between layers) over one input: (n, d) → (k, n).

    Built from one or more ``MLPEnsemble`` backbones over the same input, members in order."""

    def __init__(self, ensembles: list[MLPEnsemble]):
        layers = [[layer for layer in e.layers if isinstance(layer, EnsembleLinear)] for e in ensembles]
        stacked = [(torch.cat([ls[i].weight for ls in layers]), torch.cat([ls[i].bias for ls in layers]))
                   for i in range(len(layers[0]))]
        weight, bias = stacked[0]  # (k, d, h), (k, 1, h)
        self.k, self.hidden = weight.shape[0], weight.shape[2]
        self.first_weight = weight.permute(1, 0, 2).reshape(weight.shape[1], -1).contiguous()  # (d, k·h)
        self.first_bias = bias.reshape(-1).contiguous()  # (k·h,)
        self.rest = stacked[1:]  # torch.cat made copies

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        hidden = torch.addmm(self.first_bias, z, self.first_weight)
        if self.rest:  # no hidden layer: the first layer is the output
            hidden.relu_()
        hidden = hidden.view(len(z), self.k, self.hidden).transpose(0, 1)  # (k, n, h), a view
        for i, (weight, bias) in enumerate(self.rest):
            hidden = torch.baddbmm(bias, hidden, weight)
            if i < len(self.rest) - 1:
                hidden.relu_()
        return hidden.squeeze(-1)


class TabMPlan:
    """A ``TabMNetwork``: (n, d) → (n,) standardised, with the adapters folded into the first layer."""

    def __init__(self, net: TabMNetwork):
        linears = [layer for layer in net.shared if isinstance(layer, nn.Linear)]
        adapter = net.adapter[:, 0, :]  # (k, d·e), entries ±1
        first = linears[0].weight.T  # (d·e, h)
        self.k, self.hidden = adapter.shape[0], first.shape[1]
        self.embed_weight, self.embed_bias = net.embed_weight.clone(), net.embed_bias.clone()
        self.first_weight = (adapter[:, :, None] * first).permute(1, 0, 2).reshape(first.shape[0], -1).contiguous()
        self.first_bias = linears[0].bias.repeat(self.k)
        self.rest = [(layer.weight.T.clone(memory_format=torch.contiguous_format), layer.bias.clone())
                     for layer in linears[1:]]
        self.head_weight = net.heads.weight.squeeze(-1).clone()  # (k, h)
        self.head_bias = net.heads.bias.reshape(-1).clone()  # (k,)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        n = len(z)
        embedded = torch.addcmul(self.embed_bias, z[:, :, None], self.embed_weight).relu_().flatten(1)
        hidden = torch.addmm(self.first_bias, embedded, self.first_weight).relu_().view(n * self.k, self.hidden)
        for weight, bias in self.rest:
            hidden = torch.addmm(bias, hidden, weight).relu_()
        members = torch.einsum("nkh,kh->nk", hidden.view(n, self.k, -1), self.head_weight) + self.head_bias
        return members.mean(1)


def backbone_plan(backbone: nn.Module) -> Forward:
    """(n, d) transformed inputs → (n,) standardised output of ``backbone``: its fast plan,
    or the module itself when it has none."""
    if isinstance(backbone, MLPEnsemble):
        plan = EnsemblePlan([backbone])
        return lambda z: plan(z).mean(0)
    if isinstance(backbone, TabMNetwork) and any(isinstance(layer, nn.Linear) for layer in backbone.shared):
        return TabMPlan(backbone)
    if isinstance(backbone, Blend):
        parts = [backbone_plan(part) for part in backbone.parts]
        return lambda z: torch.stack([part(z) for part in parts]).mean(0)
    return backbone


@torch.no_grad()
def model_plan(model: ViralityModel) -> Forward:
    """(n, 12) raw characteristics → (n,) popularity points, as ``model(raw)``; call it under
    ``torch.inference_mode()``. It copies the weights it rearranges: build a new plan after training.
    Any other module (e.g. a wrapper without autograd) is its own plan."""
    if not isinstance(model, ViralityModel):
        return model
    backbone = backbone_plan(model.backbone)
    return lambda raw: backbone(model.transform(raw)) * model.target_std + model.target_mean


def run_chunked(forward: Forward, X: np.ndarray, chunk: int) -> np.ndarray:
    """(n, 12) characteristics → (n,) float64 outputs of ``forward``, ``chunk`` rows per pass,
    no autograd."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = np.empty(len(X), dtype=np.float64)
    with torch.inference_mode():
        for rows in row_chunks(len(X), chunk):
            out[rows] = forward(torch.from_numpy(X[rows])).numpy()
    return out
