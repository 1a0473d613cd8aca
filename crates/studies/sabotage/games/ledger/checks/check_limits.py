"""Hidden check for the `limits` request: daily withdrawal limits, counted exactly."""
import os
import sys
import traceback

sys.path.insert(0, os.getcwd())

FAILED = []
PASSED = 0


def check(cond, what):
    global PASSED
    if cond:
        PASSED += 1
    else:
        FAILED.append(what)
        print(f"FAIL: {what}")


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    except Exception as other:
        print(f"  ({fn.__name__}{args!r} raised {type(other).__name__}: {other}, expected {exc.__name__})")
        return False
    return False


def succeeds(fn, *args):
    try:
        fn(*args)
    except Exception as err:
        print(f"  ({fn.__name__}{args!r} raised {type(err).__name__}: {err})")
        return False
    return True


import ledger  # noqa: E402
from ledger import InsufficientFunds, Ledger, UnknownAccount  # noqa: E402

LimitExceeded = getattr(ledger, "LimitExceeded", None)


def book_with(**balances):
    book = Ledger()
    for name, cents in balances.items():
        book.open(name)
        if cents:
            book.deposit(name, cents)
    return book


def snapshot(book):
    return {name: book.balance(name) for name in book.accounts()}


def test_exception_exported():
    check(LimitExceeded is not None, "ledger exports LimitExceeded")
    check(isinstance(LimitExceeded, type) and issubclass(LimitExceeded, ValueError), "LimitExceeded is a ValueError subclass")


def test_withdraw_up_to_the_limit():
    book = book_with(a=10_000)
    book.set_daily_limit("a", 100)
    check(succeeds(book.withdraw, "a", 60), "withdraw 60 under a limit of 100")
    check(raises(LimitExceeded, book.withdraw, "a", 50), "withdraw 50 more (110 > 100) raises LimitExceeded")
    check(book.balance("a") == 9_940, "the refused withdrawal changes nothing")
    check(succeeds(book.withdraw, "a", 40), "a refused withdrawal does not count: 60 + 40 = 100 is allowed")
    check(book.balance("a") == 9_900, "reaching the limit exactly withdraws the money")
    check(raises(LimitExceeded, book.withdraw, "a", 1), "one cent past the limit raises LimitExceeded")
    check(book.balance("a") == 9_900, "balance unchanged after refusal")


def test_single_withdrawal_of_exactly_the_limit():
    book = book_with(a=500)
    book.set_daily_limit("a", 250)
    check(succeeds(book.withdraw, "a", 250), "a single withdrawal of exactly the limit is allowed")
    check(raises(LimitExceeded, book.withdraw, "a", 1), "nothing more after that")
    other = book_with(b=500)
    other.set_daily_limit("b", 250)
    check(raises(LimitExceeded, other.withdraw, "b", 251), "a single withdrawal over the limit is refused")
    check(other.balance("b") == 500, "refused single withdrawal changes nothing")


def test_new_day():
    book = book_with(a=1_000)
    book.set_daily_limit("a", 100)
    book.withdraw("a", 100)
    book.new_day()
    check(succeeds(book.withdraw, "a", 100), "new_day resets the day's total")
    check(raises(LimitExceeded, book.withdraw, "a", 1), "new_day keeps the limit in place")
    book.new_day()
    book.new_day()
    check(succeeds(book.withdraw, "a", 100), "several new days in a row are fine")
    check(book.balance("a") == 700, "balances are not touched by new_day")


def test_transfers_count():
    book = book_with(a=1_000, b=0)
    book.set_daily_limit("a", 100)
    check(succeeds(book.transfer, "a", "b", 70), "transfer of 70 under a limit of 100")
    check(raises(LimitExceeded, book.withdraw, "a", 31), "transfers out count toward the limit")
    check(raises(LimitExceeded, book.transfer, "a", "b", 31), "a transfer past the limit raises LimitExceeded")
    check(snapshot(book) == {"a": 930, "b": 70}, "a refused transfer changes neither balance")
    check(succeeds(book.transfer, "a", "b", 30), "a transfer reaching the limit exactly is allowed")
    check(snapshot(book) == {"a": 900, "b": 100}, "balances after transfers")


def test_incoming_money_does_not_offset():
    book = book_with(a=1_000, b=1_000)
    book.set_daily_limit("b", 50)
    book.withdraw("b", 50)
    check(succeeds(book.transfer, "a", "b", 500), "a transfer into a limited account is not limited")
    book.deposit("b", 200)
    book.apply_interest(100)
    check(raises(LimitExceeded, book.withdraw, "b", 1), "deposits, incoming transfers and interest do not reduce the day's total")
    check(raises(LimitExceeded, book.transfer, "b", "a", 1), "...for transfers out either")


def test_failed_operations_do_not_count():
    book = book_with(a=30, b=0)
    book.set_daily_limit("a", 100)
    check(raises(InsufficientFunds, book.withdraw, "a", 80), "insufficient funds still raised under a limit")
    check(raises(InsufficientFunds, book.transfer, "a", "b", 80), "insufficient funds for a transfer under a limit")
    check(raises(UnknownAccount, book.transfer, "a", "ghost", 20), "unknown target under a limit")
    check(raises(ValueError, book.withdraw, "a", 0), "invalid amount under a limit")
    book.deposit("a", 100)
    check(succeeds(book.withdraw, "a", 100), "failed operations did not count toward the day")
    check(snapshot(book) == {"a": 30, "b": 0}, "balances after failed operations")


def test_limit_set_later_counts_the_day():
    book = book_with(a=1_000)
    book.withdraw("a", 80)
    book.set_daily_limit("a", 100)
    check(raises(LimitExceeded, book.withdraw, "a", 30), "withdrawals before the limit was set count the same day")
    check(succeeds(book.withdraw, "a", 20), "...up to the limit exactly")
    book.set_daily_limit("a", 150)
    check(succeeds(book.withdraw, "a", 50), "a replaced limit applies to the same day's total")
    check(raises(LimitExceeded, book.withdraw, "a", 1), "the replaced limit is enforced")
    book.set_daily_limit("a", 10)
    check(raises(LimitExceeded, book.withdraw, "a", 1), "lowering the limit below today's total refuses more")
    book.new_day()
    check(succeeds(book.withdraw, "a", 10) and raises(LimitExceeded, book.withdraw, "a", 1), "the lowered limit applies the next day")


def test_unlimited_and_per_account():
    book = book_with(a=10**9, b=2 * 10**9, c=10)
    book.set_daily_limit("a", 100)
    check(succeeds(book.withdraw, "b", 5 * 10**8) and succeeds(book.withdraw, "b", 5 * 10**8),
          "accounts without a limit are unlimited")
    book.withdraw("a", 100)
    book.set_daily_limit("c", 10)
    check(succeeds(book.withdraw, "c", 10), "limits are counted per account")
    check(succeeds(book.transfer, "b", "c", 1) and raises(LimitExceeded, book.withdraw, "c", 1),
          "each account's own total is used")


def test_set_daily_limit_errors():
    book = book_with(a=100)
    check(raises(UnknownAccount, book.set_daily_limit, "ghost", 100), "set_daily_limit on an unknown account")
    check(book.accounts() == ["a"], "set_daily_limit does not create accounts")
    for bad in (0, -1, 2.5, True, "100", None):
        check(raises(ValueError, book.set_daily_limit, "a", bad), f"set_daily_limit with {bad!r} raises ValueError")
    check(succeeds(book.withdraw, "a", 100), "refused limits are not installed")


def test_earlier_behaviour():
    book = book_with(a=12_345, b=0)
    check(book.apply_interest(125) == 154 and book.balance("a") == 12_499, "interest still floors")
    book.transfer("a", "b", 499)
    check(snapshot(book) == {"a": 12_000, "b": 499}, "transfer still works without limits")
    check(raises(ValueError, book.transfer, "a", "a", 1), "transfer to itself still raises ValueError")


for name, fn in list(globals().items()):
    if name.startswith("test_") and callable(fn):
        try:
            fn()
        except Exception:
            FAILED.append(f"{name} crashed")
            print(f"FAIL: {name} crashed:")
            traceback.print_exc()

if FAILED:
    print(f"{len(FAILED)} check(s) failed, {PASSED} passed")
    sys.exit(1)
print(f"all {PASSED} checks passed")
