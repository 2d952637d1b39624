from .geom_branch import GeomBranch
from .modules import TokenFusionModule, TokenPruner
from .openclip_backbone import OpenCLIPBackbone

__all__ = ['GeomBranch', 'OpenCLIPBackbone', 'TokenFusionModule', 'TokenPruner']
