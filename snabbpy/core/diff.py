"""The difference between two configurations, as the actions that turn the
running one into the new one. The engine applies them; nothing here runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from snabbpy.core.config import Config


@dataclass
class Plan:
    """What to do, in order: stop apps, remove links, add links, start apps,
    reconfigure apps."""

    stop: list[str] = field(default_factory=list)
    unlink: list[str] = field(default_factory=list)
    link: list[str] = field(default_factory=list)
    start: list[str] = field(default_factory=list)
    reconfig: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when the configurations are the same."""
        return not (self.stop or self.unlink or self.link or self.start or self.reconfig)


def plan(old: Config, new: Config, can_reconfig: set[str] | None = None) -> Plan:
    """Compares ``old`` with ``new``. Apps whose configuration changed are
    reconfigured when their name is in ``can_reconfig``, restarted (stopped
    and started again) otherwise; apps whose class changed are restarted.
    Links are kept when both configurations have them, packets and all."""
    can_reconfig = can_reconfig or set()
    p = Plan()
    for name, spec in old.apps.items():
        if name not in new.apps or new.apps[name].cls is not spec.cls:
            p.stop.append(name)
        elif new.apps[name].conf != spec.conf:
            if name in can_reconfig:
                p.reconfig.append(name)
            else:
                p.stop.append(name)
    for name in new.apps:
        if name not in old.apps or name in p.stop:
            p.start.append(name)
    p.unlink = [s for s in old.links if s not in new.links]
    p.link = [s for s in new.links if s not in old.links]
    return p
