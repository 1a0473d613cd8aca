"""Accounts of the ledger: named balances of whole cents that never go below zero."""


class UnknownAccount(KeyError):
    """Raised when an operation names an account that was never opened."""


class InsufficientFunds(ValueError):
    """Raised when a withdrawal would take an account below zero."""


def _check_amount(cents):
    """Reject anything but a positive int of cents (bool is not an amount)."""
    if isinstance(cents, bool) or not isinstance(cents, int) or cents <= 0:
        raise ValueError(f"amount must be a positive whole number of cents, got {cents!r}")


class Ledger:
    """Named accounts, each holding a non-negative balance in cents."""

    def __init__(self):
        self._balances = {}

    def open(self, name):
        """Open an empty account; opening a name twice is a ValueError."""
        if name in self._balances:
            raise ValueError(f"account {name!r} is already open")
        self._balances[name] = 0

    def accounts(self):
        """The names of all open accounts, sorted."""
        return sorted(self._balances)

    def balance(self, name):
        """The balance of an account, in cents."""
        try:
            return self._balances[name]
        except KeyError:
            raise UnknownAccount(name) from None

    def deposit(self, name, cents):
        """Add cents to an account."""
        _check_amount(cents)
        self._balances[name] = self.balance(name) + cents

    def withdraw(self, name, cents):
        """Take cents from an account; the balance may not go below zero."""
        _check_amount(cents)
        current = self.balance(name)
        if cents > current:
            raise InsufficientFunds(f"{name!r} holds {current} cents, cannot withdraw {cents}")
        self._balances[name] = current - cents
