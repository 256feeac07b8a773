"""Network interfaces of the pipeline and their built-in, weight-free implementations.

The learned feature network and decoder plug in behind :class:`FeatureExtractor` and
:class:`Decoder`; until they do, the pipeline runs :class:`RGBDisparityFeatures` and
:class:`CompositingDecoder` and says so in the log.
"""

from .decoder import CompositingDecoder, Decoder, SplattedFrame
from .features import FeatureExtractor, RGBDisparityFeatures
from .zoo import REGISTRY, create, find_weights

__all__ = ["REGISTRY", "CompositingDecoder", "Decoder", "FeatureExtractor",
           "RGBDisparityFeatures", "SplattedFrame", "create", "find_weights"]
