"""Networks of the paper (§4, Fig. 3): P3D, G-P3D and DG-P3D ResNets, plus a model registry.

Build any network by name::

    from opplan.models import build_model, heads_loss, fuse_heads
    net = build_model("dg_p3d_tiny", num_classes=10)      # or "dg_p3d_resnet50", "r2plus1d_18"

**Output contract.** ``net(clips)`` with clips of shape (N, 3, T, H, W) returns

* a logits ``Tensor`` (N, num_classes) for single-head networks (P3D, G-P3D, torchvision's
  video models, user factories), or
* :class:`DualHeadLogits` ``(temporal, spatial)`` for DG-P3D — in train *and* eval mode, so the
  type never depends on the mode.

Trainers and evaluators treat both alike through two functions:

* ``loss = heads_loss(output, labels)`` — cross-entropy, summed over the heads (§4: DG-P3D is
  trained with the sum of both heads' losses);
* ``scores = fuse_heads(output)`` — (N, num_classes), the mean of the heads' logits (§4: the
  heads' predictions are "linearly fused"); apply softmax / average over views afterwards.

P3D-family networks also follow timm's contract: ``forward_features`` (a feature map, or
:class:`DualHeadFeatures`), ``forward_head(features, pre_logits=False)``,
``forward_intermediates`` (every stage's output, as in Fig. 3), ``get_classifier()`` and
``reset_classifier(num_classes)``; :func:`reset_classifier` does the latter for torchvision's
models too. :func:`freeze_bn` freezes all BatchNorms but the first (§5.2),
:func:`inflate_from_2d` initialises from 2D ImageNet weights, :func:`load_weights` from a
video checkpoint of opplan, PySlowFast, MMAction2 or torchvision (§5.5), :func:`count_flops` and
:func:`model_costs` give Table 8's numbers.
"""

from __future__ import annotations

from opplan.models import _zoo  # noqa: F401  (registers the built-in networks)
from opplan.models._blocks import BasicBlock, Bottleneck, P3DConv
from opplan.models._flops import ModelCost, count_flops, count_params, model_costs
from opplan.models._frozen_bn import (
    FrozenBatchNorm1d,
    FrozenBatchNorm2d,
    FrozenBatchNorm3d,
    freeze_bn,
    frozen_bn_names,
)
from opplan.models._global_context import GlobalContext
from opplan.models._heads import (
    ClassifierHead,
    DualHeadFeatures,
    DualHeadLogits,
    ModelOutput,
    fuse_heads,
    heads_loss,
)
from opplan.models._p3d import P3DResNet, P3DStem
from opplan.models._registry import (
    ModelEntry,
    build_model,
    get_model_entry,
    list_models,
    register_model,
)
from opplan.models._utils import reset_classifier
from opplan.models.foreign import Weights, WeightsFit, fit_weights, load_weights, read_weights
from opplan.models.inflate import InflationReport, inflate_from_2d, load_2d_state_dict

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ClassifierHead",
    "DualHeadFeatures",
    "DualHeadLogits",
    "FrozenBatchNorm1d",
    "FrozenBatchNorm2d",
    "FrozenBatchNorm3d",
    "GlobalContext",
    "InflationReport",
    "ModelCost",
    "ModelEntry",
    "ModelOutput",
    "P3DConv",
    "P3DResNet",
    "P3DStem",
    "Weights",
    "WeightsFit",
    "build_model",
    "count_flops",
    "count_params",
    "fit_weights",
    "freeze_bn",
    "frozen_bn_names",
    "fuse_heads",
    "get_model_entry",
    "heads_loss",
    "inflate_from_2d",
    "list_models",
    "load_2d_state_dict",
    "load_weights",
    "model_costs",
    "read_weights",
    "register_model",
    "reset_classifier",
]
