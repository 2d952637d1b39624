from .interactive_predictor_hook import BindInteractivePredictorHook

__all__ = ['BindInteractivePredictorHook']
