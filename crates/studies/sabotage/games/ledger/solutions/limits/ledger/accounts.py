"""Accounts of the ledger: named balances of whole cents that never go below zero."""


class UnknownAccount(KeyError):
    """Raised when an operation names an account that was never opened."""


class InsufficientFunds(ValueError):
    """Raised when a withdrawal would take an account below zero."""


class LimitExceeded(ValueError):
    """Raised when a withdrawal would take an account past its daily limit."""


def _check_amount(cents):
    """Reject anything but a positive int of cents (bool is not an amount)."""
    if isinstance(cents, bool) or not isinstance(cents, int) or cents <= 0:
        raise ValueError(f"amount must be a positive whole number of cents, got {cents!r}")


class Ledger:
    """Named accounts, each holding a non-negative balance in cents."""

    def __init__(self):
        self._balances = {}
        self._limits = {}  # name -> most cents that may leave the account per day
        self._withdrawn = {}  # name -> cents that left the account today

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
        self._check_debit(name, cents)
        self._debit(name, cents)

    def transfer(self, source, target, cents):
        """Move cents from source to target: both change, or (on any error) neither does."""
        if source == target:
            raise ValueError(f"cannot transfer from {source!r} to itself")
        _check_amount(cents)
        self.balance(target)  # raises UnknownAccount before anything changes
        self._check_debit(source, cents)
        self._debit(source, cents)
        self._balances[target] += cents

    def apply_interest(self, rate_bp):
        """Credit every account rate_bp basis points of its balance, rounded down to a
        whole cent; returns the total paid."""
        if isinstance(rate_bp, bool) or not isinstance(rate_bp, int) or rate_bp < 0:
            raise ValueError(f"rate must be a non-negative whole number of basis points, got {rate_bp!r}")
        total = 0
        for name, current in self._balances.items():
            interest = current * rate_bp // 10_000  # exact integer arithmetic, floored
            self._balances[name] = current + interest
            total += interest
        return total

    def set_daily_limit(self, name, cents):
        """Cap the cents that may leave an account per day (replacing any earlier cap)."""
        _check_amount(cents)
        self.balance(name)
        self._limits[name] = cents

    def new_day(self):
        """Start a new day: nothing has been withdrawn from any account yet."""
        self._withdrawn.clear()

    def _check_debit(self, name, cents):
        """Raise unless cents may leave the account now; changes nothing."""
        current = self.balance(name)
        if cents > current:
            raise InsufficientFunds(f"{name!r} holds {current} cents, cannot withdraw {cents}")
        limit = self._limits.get(name)
        taken = self._withdrawn.get(name, 0)
        if limit is not None and taken + cents > limit:
            raise LimitExceeded(f"{name!r} may withdraw {limit - taken} more cents today, not {cents}")

    def _debit(self, name, cents):
        """Take cents that _check_debit allowed, counting them toward today's total."""
        self._balances[name] -= cents
        self._withdrawn[name] = self._withdrawn.get(name, 0) + cents
