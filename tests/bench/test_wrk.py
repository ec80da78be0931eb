"""Reading wrk's report (bench/wrk.py)."""

from __future__ import annotations

import pytest

from bench.wrk import parse_wrk

OUTPUT = """\
Running 10s test @ http://127.0.0.1:8000/webhooks/workos
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.26ms    4.58ms  98.27ms   92.10%
    Req/Sec     5.48k   312.17     5.91k    88.00%
  Latency Distribution
     50%  812.00us
     75%    9.95ms
     90%   12.11ms
     99%    1.03s
  54521 requests in 10.01s, 8.53MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:   5447.10
Transfer/sec:    872.71KB
"""


def test_reads_rate_latencies_and_errors() -> None:
    result = parse_wrk(OUTPUT)

    assert result.requests_per_s == 5447.10
    assert result.p50_ms == pytest.approx(0.812)
    assert result.p99_ms == pytest.approx(1030.0)
    assert result.requests == 54521
    assert result.non_2xx == 7
    assert result.socket_errors == 3


def test_clean_run_has_no_errors() -> None:
    clean = "\n".join(line for line in OUTPUT.splitlines() if "errors" not in line and "Non-2xx" not in line)

    result = parse_wrk(clean)

    assert (result.non_2xx, result.socket_errors) == (0, 0)


def test_unexpected_output_is_an_error() -> None:
    with pytest.raises(ValueError, match="unexpected wrk output"):
        parse_wrk("unable to connect to 127.0.0.1:8000 Connection refused")
