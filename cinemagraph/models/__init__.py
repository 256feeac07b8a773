"""The network zoo: the official networks by name (:mod:`.zoo`: registry and the one
weight loader) and their modules. Stages use them through their own components."""

from .zoo import REGISTRY, create, find_weights

__all__ = ["REGISTRY", "create", "find_weights"]
