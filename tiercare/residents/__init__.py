"""The resident (patient) index: identity, family-doctor contract, duplicates and merges."""
