"""The pipeline: typed stages search -> distill -> export -> measure -> bundle, one run of `fit`."""
