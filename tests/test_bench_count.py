"""`snabbpy bench --packets` takes counts as Snabb's snabbmark does
(30e6, 1e9, plain integers); anything else is one line and exit 2."""

import pytest
from click.testing import CliRunner

from snabbpy.bench import parse_count
from snabbpy.cli import main
from snabbpy.core.config import ConfigError


@pytest.mark.parametrize("text, want", [("30e6", 30_000_000), ("1e9", 1_000_000_000),
                                        ("5000000", 5_000_000), ("2.5e6", 2_500_000),
                                        ("1E3", 1000), ("+7", 7), (" 12 ", 12),
                                        ("0x1000", 4096), ("18446744073709551615", 2**64 - 1)])
def test_counts_as_snabbmark_takes_them(text, want):
    assert parse_count("--packets", text) == want


@pytest.mark.parametrize("text, why", [("abc", "not a number"), ("", "not a number"),
                                       ("30e6x", "not a number"), ("inf", "not a number"),
                                       ("nan", "not a number"), ("-5", "not a number"),
                                       ("1.5", "not a whole number"),
                                       ("1e-3", "not a whole number"), ("0", "at least 1"),
                                       ("1e999999999", "more than a 64-bit counter holds"),
                                       ("18446744073709551616", "64-bit")])
def test_bad_counts(text, why):
    with pytest.raises(ConfigError, match=why):
        parse_count("--packets", text)


def test_bench_runs_the_number_of_packets_given_in_e_notation():
    r = CliRunner().invoke(main, ["bench", "basic1", "--packets", "2e5"])
    assert r.exit_code == 0, r.output
    sent = float(r.output.split("Processed ", 1)[1].split(" million")[0])
    assert 0.2 <= sent < 0.3  # at least 2e5, and at most a breath's worth more


def test_a_bad_count_is_one_line_and_exit_2():
    r = CliRunner().invoke(main, ["bench", "basic1", "--packets", "30e6x"])
    assert r.exit_code == 2
    assert r.output == "snabbpy: error: --packets '30e6x': not a number " \
                       "(write e.g. 30e6 or 30000000)\n"
