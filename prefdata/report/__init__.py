"""Reports: the dataset card."""
