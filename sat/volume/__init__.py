"""Shared volume pieces below data and infer: world geometry, image and label-code resampling,
the preprocessing spec and its intensity rules."""
