"""Development tooling, not the service: the embedded redis-server (`hookyard dev`, the test harness, the suites)
and realistic WorkOS sample events (`hookyard send`, `hookyard.testing.sample_event`). The receiver never
imports it; it lives here, beside the CLI and the harness that use it, rather than in `shared`."""
