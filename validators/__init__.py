"""Training pre-flight and dataset checks (see the validators issue)."""
