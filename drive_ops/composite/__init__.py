"""The edit back over the original: compositing, Harmonizer's white-box filters, its regressor, video harmonisation."""
