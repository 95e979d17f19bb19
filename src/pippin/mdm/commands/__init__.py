"""Pippin's description of Apple's MDM commands for iOS and iPadOS, and the checks a command passes before it is
queued. The entry point is :mod:`pippin.mdm.command_catalog`."""
