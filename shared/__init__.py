"""Code both Hookyard processes use: settings, the wire format, Redis keys, signatures, envelopes, errors, logging."""
