"""A small ledger of bank accounts holding whole cents."""

from .accounts import InsufficientFunds, Ledger, LimitExceeded, UnknownAccount

__all__ = ["InsufficientFunds", "Ledger", "LimitExceeded", "UnknownAccount"]
