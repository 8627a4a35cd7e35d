"""Workers: one graph over several processes.

An app with ``worker: NAME`` in its graph runs in the worker process NAME;
the others run in the main process. ``placement`` splits a graph into one
graph per process, joined by interlinks (``snabbpy.core.interlink``);
``supervisor`` starts, watches, reports and stops the workers; ``child``
is what a worker process runs. See docs/workers.md."""
