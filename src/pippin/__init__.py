"""Pippin: an MDM server for corporate-owned iOS and iPadOS devices enrolled through Apple's DEP."""

__version__ = "0.1.0"
