"""`make chaos`: the real stack under a WorkOS-like sender while workers, Redis and the receiver are killed."""
