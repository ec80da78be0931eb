"""`make chaos`: a nemesis against the real stack under a WorkOS-like sender (see chaos/run.py)."""
