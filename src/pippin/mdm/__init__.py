"""The device half's services: enrollment, device identities at check-in, and what devices say about themselves."""
