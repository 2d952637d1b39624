from . import hooks  # noqa: F401
from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_compat import register_mmengine_safe_globals

__all__ = ['AtomicLocalBackend', 'register_mmengine_safe_globals']
