"""Simulated iPhones and iPads: what a device does in Setup Assistant, from its cloud configuration to check-in.

A simulated device meets the simulated Apple (its factory facts and identity, its cloud configuration, APNs) and
the MDM server only over HTTP(S), as a real one does, so it can enroll into any MDM server, not only Pippin. It
imports nothing of Pippin's product code; its crypto is written here against the RFCs (CMS, RFC 5652; SCEP,
RFC 8894) so that one bug cannot hide on both sides of the wire.
"""
