"""Counters for Prometheus: ``exposition`` turns counter readings into the
text exposition format (no I/O), ``collect`` reads every running snabbpy
process's counters, ``server`` serves them over HTTP (``snabbpy exporter``,
``snabbpy run --metrics``)."""
