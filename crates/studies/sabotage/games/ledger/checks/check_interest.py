"""Hidden check for the `interest` request: Ledger.apply_interest floors exactly."""
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


def interest_case(balance, rate_bp, expected):
    book = book_with(a=balance)
    paid = book.apply_interest(rate_bp)
    got = book.balance("a")
    check(paid == expected and type(paid) is int,
          f"{balance} cents at {rate_bp} bp pays {expected} (returned {paid!r})")
    check(got == balance + expected and type(got) is int,
          f"{balance} cents at {rate_bp} bp leaves {balance + expected} (balance {got!r})")


def test_rounding_down():
    interest_case(10_000, 100, 100)
    interest_case(12_345, 125, 154)      # 154.3125
    interest_case(199, 50, 0)            # 0.995 must not round up
    interest_case(300, 50, 1)            # 1.5 -> 1
    interest_case(100, 50, 0)            # exactly half a cent -> 0
    interest_case(1_000_001, 9_999, 999_900)  # 999900.9999
    interest_case(9_999, 1, 0)
    interest_case(10_000, 1, 1)
    interest_case(400, 25_000, 1_000)    # rates above 100% are allowed


def test_exact_for_large_balances():
    interest_case(10**17 - 1, 1, 9_999_999_999_999)            # a float division rounds this up
    interest_case(123_456_789_012_345_678, 7, 86_419_752_308_641)


def test_many_accounts_and_total():
    book = book_with(a=10_000, b=199, c=0, d=5_050, e=1)
    paid = book.apply_interest(200)
    check(snapshot(book) == {"a": 10_200, "b": 202, "c": 0, "d": 5_151, "e": 1},
          f"200 bp over several accounts (got {snapshot(book)})")
    check(paid == 200 + 3 + 0 + 101 + 0, f"total paid over several accounts is 304 (got {paid!r})")
    paid = book.apply_interest(200)
    check(paid == 204 + 4 + 0 + 103 + 0, f"second application compounds on new balances (got {paid!r})")


def test_zero_rate_and_empty():
    book = book_with(a=5_000, b=0)
    check(book.apply_interest(0) == 0, "rate 0 pays 0")
    check(snapshot(book) == {"a": 5_000, "b": 0}, "rate 0 changes nothing")
    check(Ledger().apply_interest(300) == 0, "an empty ledger pays 0")
    zero = book_with(z=0)
    check(zero.apply_interest(500) == 0 and zero.balance("z") == 0, "an empty account earns nothing and raises nothing")


def test_invalid_rates():
    book = book_with(a=5_000, b=70)
    for bad in (-1, -100, 1.5, 100.0, True, False, "100", None):
        check(raises(ValueError, book.apply_interest, bad), f"rate {bad!r} raises ValueError")
        check(snapshot(book) == {"a": 5_000, "b": 70}, f"rate {bad!r} changes nothing")


def test_earlier_behaviour():
    book = book_with(a=1_000, b=0)
    book.transfer("a", "b", 400)
    check(snapshot(book) == {"a": 600, "b": 400}, "transfer still works")
    check(raises(InsufficientFunds, book.transfer, "b", "a", 401), "transfer still checks funds")
    check(raises(UnknownAccount, book.transfer, "a", "ghost", 1) and snapshot(book) == {"a": 600, "b": 400},
          "transfer to an unknown account still changes nothing")
    book.withdraw("a", 600)
    check(book.balance("a") == 0, "withdraw still works")


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
