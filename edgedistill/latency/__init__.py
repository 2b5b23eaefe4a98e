"""Latency: per-layer costs, the latency model, and its calibration from measurements."""
