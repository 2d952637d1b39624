from . import hooks  # noqa: F401
from .checkpoint_compat import register_mmengine_safe_globals

__all__ = ['register_mmengine_safe_globals']
