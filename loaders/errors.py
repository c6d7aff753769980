"""The loaders' exceptions: one root; row-level problems are not exceptions but `Reject`s."""

from __future__ import annotations


class LoaderError(Exception):
    """Root of every error raised by `loaders`."""


class ContractError(LoaderError):
    """The input folder does not follow the data contract (a file or a required column is
    missing, a header repeats a column, two formats of one file). Nothing was written."""


class ConcurrentIdentityChange(LoaderError):
    """The stored records a batch of customers resolves against kept changing under other
    writers, attempt after attempt; nothing of the batch was written."""
