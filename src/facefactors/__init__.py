"""facefactors: factor a face into identity, pose, expression and illumination.

Importing the package is cheap: heavy modules (torch models, renderers) are
imported by the submodules that need them, never here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
