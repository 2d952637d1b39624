"""Project-wide helpers that belong to no single package."""
from seg.utils.atomic_io import atomic_open, atomic_save_png, atomic_write_json

__all__ = ['atomic_open', 'atomic_save_png', 'atomic_write_json']
