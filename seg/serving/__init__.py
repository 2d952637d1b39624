"""Online interactive segmentation service: REST + WebSocket (FastAPI) and a browser UI.

``create_app(ModelEngine.from_config(config, checkpoint, device), ServerSettings(...))`` builds
the app; ``tools/serve.py`` runs it with uvicorn. See ``docs/serving.md``.
"""
from .app import ServerSettings, create_app
from .batcher import MicroBatcher
from .engine import ImagePrompt, ModelEngine
from .errors import ApiError
from .media import Limits
from .service import SegmentationService
from .sessions import Session, SessionManager

__all__ = ['create_app', 'ServerSettings', 'MicroBatcher', 'ModelEngine', 'ImagePrompt', 'ApiError',
           'Limits', 'SegmentationService', 'Session', 'SessionManager']
