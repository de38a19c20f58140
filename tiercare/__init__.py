"""TierCare: plan and run an integrated, tiered health-service network."""

__version__ = "0.1.0"
