"""Errors the agent can speak around instead of going silent."""


class CRMError(Exception):
    """Base of the errors callers of `crm` are expected to handle."""


class DatabaseUnavailable(CRMError):
    """The database cannot be reached; the agent apologises and offers a transfer."""
