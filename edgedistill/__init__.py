"""edgedistill: distill a teacher into a student that meets a latency budget on an edge device."""

__version__ = "0.1.0"
