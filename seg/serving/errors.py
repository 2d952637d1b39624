"""The one error type of the server: a message for the client and the HTTP status to answer."""
from contextlib import contextmanager
from typing import Iterator


class ApiError(Exception):
    """A request the server refuses: ``status`` (4xx / 503) and a message naming what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@contextmanager
def bad_input_is_422(where: str) -> Iterator[None]:
    """The predictors raise ValueError / IndexError / KeyError / TypeError for inputs they refuse
    (their messages name the value): answer those 422, prefixed with ``where``."""
    try:
        yield
    except (ValueError, IndexError, KeyError, TypeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise ApiError(422, f'{where}: {message}') from e


__all__ = ['ApiError', 'bad_input_is_422']
