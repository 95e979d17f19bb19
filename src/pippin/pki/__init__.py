"""Pippin's PKI for device identities: the SCEP CA, the server identity, enrollment challenges and SCEP itself."""
