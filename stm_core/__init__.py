"""STM engine: Space-Time Memory networks for video object segmentation (Oh et al., ICCV 2019).

Pure PyTorch/NumPy; the application talks to it only through `stm_core.session.AnnotationSession`.
"""

__version__ = "0.1.0"
