from .sam2_teacher import TINY_SAM2_OVERRIDES, SAM2Teacher, TeacherOutput

__all__ = ['TINY_SAM2_OVERRIDES', 'SAM2Teacher', 'TeacherOutput']
