"""Schedules, holidays, minute-precise slots with reserved referral quotas, and appointments."""
