"""Hidden check for the `transfer` request: Ledger.transfer is correct and all-or-nothing."""
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
    except Exception as other:  # wrong kind of error
        print(f"  ({fn.__name__}{args!r} raised {type(other).__name__}: {other}, expected {exc.__name__})")
        return False
    return False


from ledger import InsufficientFunds, Ledger, UnknownAccount  # noqa: E402


def book_with(**balances):
    book = Ledger()
    for name, cents in balances.items():
        book.open(name)
        if cents:
            book.deposit(name, cents)
    return book


def snapshot(book):
    return {name: book.balance(name) for name in book.accounts()}


def test_moves_money():
    book = book_with(a=1000, b=5)
    book.transfer("a", "b", 300)
    check(snapshot(book) == {"a": 700, "b": 305}, "transfer a->b 300 gives a=700 b=305")
    book.transfer("b", "a", 305)
    check(snapshot(book) == {"a": 1005, "b": 0}, "transferring the whole balance is allowed")
    book.transfer("a", "b", 1)
    check(snapshot(book) == {"a": 1004, "b": 1}, "transfer of 1 cent works")


def test_insufficient_funds():
    book = book_with(a=100, b=50)
    check(raises(InsufficientFunds, book.transfer, "a", "b", 101), "transfer over the balance raises InsufficientFunds")
    check(snapshot(book) == {"a": 100, "b": 50}, "failed transfer (insufficient funds) changes nothing")
    empty = book_with(a=0, b=0)
    check(raises(InsufficientFunds, empty.transfer, "a", "b", 1), "transfer from an empty account raises InsufficientFunds")
    check(snapshot(empty) == {"a": 0, "b": 0}, "failed transfer from an empty account changes nothing")


def test_unknown_accounts():
    book = book_with(a=100, b=50)
    check(raises(UnknownAccount, book.transfer, "a", "ghost", 10), "unknown target raises UnknownAccount")
    check(snapshot(book) == {"a": 100, "b": 50}, "unknown target: source balance unchanged, no account created")
    check(raises(UnknownAccount, book.transfer, "ghost", "b", 10), "unknown source raises UnknownAccount")
    check(snapshot(book) == {"a": 100, "b": 50}, "unknown source: target balance unchanged, no account created")
    check(raises(KeyError, book.transfer, "a", "ghost", 10), "UnknownAccount from transfer is a KeyError")


def test_invalid_amounts():
    book = book_with(a=100, b=50)
    for bad in (0, -1, -100, 2.5, 10.0, True, False, "10", None):
        check(raises(ValueError, book.transfer, "a", "b", bad), f"transfer of {bad!r} raises ValueError")
        check(snapshot(book) == {"a": 100, "b": 50}, f"transfer of {bad!r} changes nothing")


def test_same_account():
    book = book_with(a=100, b=0)
    check(raises(ValueError, book.transfer, "a", "a", 10), "transfer to the same account raises ValueError")
    check(raises(ValueError, book.transfer, "a", "a", 500), "transfer of too much to the same account raises ValueError")
    check(snapshot(book) == {"a": 100, "b": 0}, "transfer to the same account changes nothing")


def test_earlier_behaviour():
    book = book_with(a=0)
    book.deposit("a", 40)
    book.withdraw("a", 15)
    check(book.balance("a") == 25, "deposit/withdraw still work")
    check(raises(InsufficientFunds, book.withdraw, "a", 26), "withdraw still raises InsufficientFunds")
    check(issubclass(InsufficientFunds, ValueError), "InsufficientFunds is a ValueError")
    check(raises(UnknownAccount, book.balance, "nobody"), "balance of an unknown account raises UnknownAccount")
    check(raises(ValueError, book.deposit, "a", True), "deposit of True raises ValueError")


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
