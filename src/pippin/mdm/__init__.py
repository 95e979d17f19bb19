"""The device half's services: enrollment, device identities and check-ins, and what devices say about themselves."""
