"""`python -m bench`: Hookyard measured against references run in the same invocation on the same machine.

Contenders are interleaved round by round (A B C A B C …) so a noisy neighbour hurts them alike; the report
(docs/benchmarks.md) gives medians, min-max and ratios taken within one round. See docs/benchmarks.md.
"""
