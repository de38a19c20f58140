"""Planning scenarios: named sets of changes to the network, evaluated against the baseline."""
