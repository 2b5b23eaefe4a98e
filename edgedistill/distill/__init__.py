"""Distillation: the loss registry, the training loop, plans of one or several stages."""
