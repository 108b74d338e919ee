"""The executor service (docs/runtime.md §5): an HTTP front (uvicorn) over a pool of sandboxed worker processes.

Start it with ``python -m policygrid.executor serve`` (or ``policygrid executor serve``): see ``cli.py`` for the
options and ``docs/executor.md`` for the design, the protections and how to deploy it.
"""

from .cli import add_command_group, main, serve

__all__ = ["add_command_group", "main", "serve"]
