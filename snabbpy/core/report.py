"""Reports of a running engine: the live load line and the final tables."""

from __future__ import annotations

import traceback
from pathlib import Path

from snabbpy.core import packet
from snabbpy.core.engine import AppError, Engine

#: Frames from files under here are snabbpy's own, not the user's.
PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


def app_error_text(exc: AppError | Exception) -> str:
    """One line naming the app, its class and method and the exception,
    then the frames of the user's own code (none of snabbpy's or click's).
    Any other error (a PacketFault: its line names packet and app) is its
    line alone."""
    if not isinstance(exc, AppError):
        return f"snabbpy: error: {exc}"
    frames = [f for f in traceback.extract_tb(exc.error.__traceback__)
              if not f.filename.startswith(PACKAGE_DIR) and "click" not in f.filename]
    text = f"snabbpy: error: {exc}"
    if frames:
        text += "\n" + "".join(traceback.format_list(frames)).rstrip()
    return text


class LoadReporter:
    """Measures what the engine moved since the previous call: packets
    finished (freed) per second and their bits per second, like Snabb's
    load report."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._last = self._sample()

    def _sample(self) -> tuple[int, int, int, int]:
        s = packet.stats()
        return self.engine.clock(), s["freed"], s["freed_bytes"], self._drops()

    def _drops(self) -> int:
        return sum(link.counters["txdrop"] for link in self.engine.links.values())

    def line(self) -> str:
        """One line: the rates since the last line."""
        now, freed, freed_bytes, drops = self._sample()
        then, freed0, bytes0, drops0 = self._last
        self._last = (now, freed, freed_bytes, drops)
        dt = max(now - then, 1) / 1e9
        pps = (freed - freed0) / dt
        gbps = (freed_bytes - bytes0) * 8 / dt / 1e9
        return (
            f"load: time: {dt:.2f}s  rate: {pps / 1e6:.3f} Mpps  {gbps:.3f} Gbit/s"
            f"  drops: {drops - drops0}"
        )


def link_report(engine: Engine) -> str:
    """A table of every link's counters."""
    return link_table({spec: link.stats() for spec, link in engine.links.items()})


def link_table(links: dict[str, dict[str, int]]) -> str:
    """The link report of counters by link spec."""
    rows = ["link report:"]
    for spec, s in sorted(links.items()):
        sent = s["txpackets"] + s["txdrop"]
        loss = 100.0 * s["txdrop"] / sent if sent else 0.0
        rows.append(
            f"  {s['txpackets']:>15,} sent on {spec} "
            f"(loss rate: {loss:.1f}%, {s['txbytes']:,} bytes, {s['txdrop']:,} dropped)"
        )
    return "\n".join(rows)


def app_report(engine: Engine) -> str:
    """Every app's counters and its own ``report()``, when it has either."""
    texts = {name: app.report() for name, app in engine.apps.items() if hasattr(app, "report")}
    return app_table(engine.counters()["apps"], texts)


def app_table(counters: dict[str, dict[str, int]], texts: dict[str, object]) -> str:
    """The app report of counters and ``report()`` texts by app name."""
    rows = []
    for name in dict.fromkeys([*counters, *texts]):
        stats = counters.get(name) or {}
        text = texts.get(name)
        if stats or text:
            rows.append(f"  {name}:")
            rows += [f"    {k}: {v:,}" for k, v in stats.items()]
            if text:
                rows += [f"    {line}" for line in str(text).splitlines()]
    return "\n".join(["app report:", *rows]) if rows else ""
