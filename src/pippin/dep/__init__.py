"""DEP: tokens, Apple's DEP client, sync, profiles."""
