"""Every example graph in configs/ loads: its classes exist and its keys
are right (running them may need root, a peer or a file, so they are run
by the tests of their apps)."""

from pathlib import Path

import pytest

from snabbpy.core import config

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


def test_there_are_example_graphs():
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_graph_loads(path):
    c = config.load_yaml(path)
    assert c.apps, f"{path.name} has no apps"
