"""The registry of the health-service network: divisions, facilities, staff, medical groups,
standardisation checklists, and the blank-spot and supply reports built on them."""
