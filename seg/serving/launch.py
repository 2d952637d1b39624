"""Run an app with uvicorn on a free loopback port in a background thread (the load test, the
browser test and the UI screenshot script talk to it over real sockets)."""
import threading
import time
from typing import Optional

import uvicorn
from fastapi import FastAPI


class ThreadedServer:
    """``with ThreadedServer(app) as server: ... server.url ...``; the app's lifespan runs too."""

    def __init__(self, app: FastAPI, host: str = '127.0.0.1', port: int = 0,
                 timeout: float = 60.0) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level='warning', lifespan='on')
        self.server = uvicorn.Server(config)
        self.host = host
        self.timeout = timeout
        self.url: Optional[str] = None
        self._thread = threading.Thread(target=self.server.run, name='fastsam2-uvicorn', daemon=True)

    def __enter__(self) -> 'ThreadedServer':
        self._thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError('the server did not start (see the log above)')
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f'http://{self.host}:{port}'
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(self.timeout)


__all__ = ['ThreadedServer']
