"""The checks of the catalogue, grouped by what they look at. Each is `check(inputs) -> CheckResult`."""
