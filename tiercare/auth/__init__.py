"""Users, roles, org-unit scope and the audit log."""
