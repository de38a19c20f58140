"""Two-way referral between the members of a medical group: state machine, inboxes, indicators."""
