"""Quantization: fake-quantized students for quantization-aware distillation, and their export."""
