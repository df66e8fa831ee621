"""opplan: optimization planning for 3D ConvNets."""

__version__ = "0.1.0"
