"""FHIR R4 (R4B, 4.3.0) view of TierCare's registry, residents, appointments and referrals."""
