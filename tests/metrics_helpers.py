"""The official Prometheus parser for the metrics tests: required under
CI (scripts/test.sh installs the test extra), a skip elsewhere."""

import os

import pytest

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("needs prometheus_client: pip install -e '.[test]'", allow_module_level=True)


def parse(text: str) -> dict:
    """{family name: family} of a scrape, as prometheus_client reads it."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text: str, family: str) -> list:
    """The samples of one family (none when the scrape has no such family)."""
    fam = parse(text).get(family)
    return list(fam.samples) if fam else []
