from .dpsr_loss import DPSRLoss

__all__ = ['DPSRLoss']
