"""Cryptographic foundations: keys, certificates, CMS decryption, and secrets encrypted at rest."""
