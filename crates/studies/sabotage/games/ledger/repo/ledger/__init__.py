"""A small ledger of bank accounts holding whole cents."""

from .accounts import InsufficientFunds, Ledger, UnknownAccount

__all__ = ["InsufficientFunds", "Ledger", "UnknownAccount"]
