"""The admin domain: who may administer Pippin (API tokens now; admin users and an audit log later)."""
