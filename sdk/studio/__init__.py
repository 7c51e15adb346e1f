"""ganzoo studio: a local web app (Gradio) to browse, sample, mix, edit and invert any zoo model.

Needs the ``studio`` extra: ``pip install 'ganzoo[studio]'``. The app binds 127.0.0.1 and never opens
a public share link unless asked to.
"""

from __future__ import annotations

import os
from typing import Any

from zoo.errors import ZooError

from .state import MAX_STUDIO_SEEDS, ModelQueue, StudioInputError, StudioState, sample_command

__all__ = ["launch", "build_app", "StudioState", "ModelQueue", "StudioInputError", "sample_command",
           "MAX_STUDIO_SEEDS", "StudioUnavailableError"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


class StudioUnavailableError(ZooError, ImportError):
    """Gradio is not installed."""


def _gradio_app() -> Any:
    # Set before Gradio is imported: it reads the switch at import and at Blocks creation.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        from . import app
    except ImportError as e:
        if "gradio" not in str(e):
            raise
        raise StudioUnavailableError("the studio needs Gradio: pip install 'ganzoo[studio]'") from None
    return app


def build_app(model: str | None = None, *, backend: str = "torch", device: str = "cpu",
              state: StudioState | None = None) -> Any:
    """The studio's ``gradio.Blocks`` (not started), opening on ``model`` (default: the embedded DCGAN)."""
    app = _gradio_app()
    return app.build_app(model or app.DEFAULT_MODEL, backend=backend, device=device, state=state)


def launch(model: str | None = None, *, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT,
           backend: str = "torch", device: str = "cpu", share: bool = False, block: bool = True,
           quiet: bool = False, state: StudioState | None = None) -> Any:
    """Serve the studio on ``http://host:port`` (local only by default) and return the ``gradio.Blocks``.

    ``model`` is loaded first, so a bad name fails here rather than in the page. ``block=False`` returns
    at once with the server running in the background (close it with ``demo.close()``). ``state``
    shares loaded models and caches with the caller.
    """
    state = state or StudioState(backend=backend, device=device)
    app = _gradio_app()
    spec = model or app.DEFAULT_MODEL
    state.model(spec, quiet=quiet)
    demo = app.build_app(spec, backend=backend, device=device, state=state)
    demo.launch(server_name=host, server_port=port, share=bool(share), prevent_thread_lock=not block,
                quiet=quiet, show_error=False, footer_links=[], css=app.CSS)
    return demo
