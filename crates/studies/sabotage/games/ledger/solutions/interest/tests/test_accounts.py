import unittest

from ledger import InsufficientFunds, Ledger, UnknownAccount


class LedgerTest(unittest.TestCase):
    def setUp(self):
        self.book = Ledger()
        self.book.open("alice")

    def test_new_account_is_empty(self):
        self.assertEqual(self.book.balance("alice"), 0)
        self.assertEqual(self.book.accounts(), ["alice"])

    def test_open_twice_is_rejected(self):
        with self.assertRaises(ValueError):
            self.book.open("alice")

    def test_deposit_and_withdraw(self):
        self.book.deposit("alice", 500)
        self.book.withdraw("alice", 200)
        self.assertEqual(self.book.balance("alice"), 300)

    def test_withdraw_everything(self):
        self.book.deposit("alice", 75)
        self.book.withdraw("alice", 75)
        self.assertEqual(self.book.balance("alice"), 0)

    def test_insufficient_funds_changes_nothing(self):
        self.book.deposit("alice", 100)
        with self.assertRaises(InsufficientFunds):
            self.book.withdraw("alice", 101)
        self.assertEqual(self.book.balance("alice"), 100)

    def test_unknown_account(self):
        with self.assertRaises(UnknownAccount):
            self.book.balance("bob")
        with self.assertRaises(UnknownAccount):
            self.book.deposit("bob", 10)

    def test_invalid_amounts(self):
        for bad in (0, -5, 1.5, "10", True, None):
            with self.assertRaises(ValueError):
                self.book.deposit("alice", bad)
        self.assertEqual(self.book.balance("alice"), 0)


class TransferTest(unittest.TestCase):
    def setUp(self):
        self.book = Ledger()
        for name in ("alice", "bob"):
            self.book.open(name)
        self.book.deposit("alice", 1000)

    def balances(self):
        return self.book.balance("alice"), self.book.balance("bob")

    def test_transfer_moves_money(self):
        self.book.transfer("alice", "bob", 300)
        self.assertEqual(self.balances(), (700, 300))

    def test_transfer_whole_balance(self):
        self.book.transfer("alice", "bob", 1000)
        self.assertEqual(self.balances(), (0, 1000))

    def test_insufficient_funds_changes_nothing(self):
        with self.assertRaises(InsufficientFunds):
            self.book.transfer("alice", "bob", 1001)
        self.assertEqual(self.balances(), (1000, 0))

    def test_unknown_accounts_change_nothing(self):
        with self.assertRaises(UnknownAccount):
            self.book.transfer("alice", "carol", 10)
        with self.assertRaises(UnknownAccount):
            self.book.transfer("carol", "bob", 10)
        self.assertEqual(self.balances(), (1000, 0))
        self.assertEqual(self.book.accounts(), ["alice", "bob"])

    def test_invalid_amounts_and_same_account(self):
        for bad in (0, -1, 2.5, True):
            with self.assertRaises(ValueError):
                self.book.transfer("alice", "bob", bad)
        with self.assertRaises(ValueError):
            self.book.transfer("alice", "alice", 10)
        self.assertEqual(self.balances(), (1000, 0))


class InterestTest(unittest.TestCase):
    def setUp(self):
        self.book = Ledger()
        for name, cents in (("alice", 10_000), ("bob", 199), ("carol", 0)):
            self.book.open(name)
            if cents:
                self.book.deposit(name, cents)

    def test_interest_is_rounded_down(self):
        paid = self.book.apply_interest(50)  # 0.5 %
        self.assertEqual(paid, 50)
        self.assertEqual(self.book.balance("alice"), 10_050)
        self.assertEqual(self.book.balance("bob"), 199)  # 0.995 cents -> 0
        self.assertEqual(self.book.balance("carol"), 0)

    def test_large_balances_are_exact(self):
        self.book.deposit("carol", 10**17 - 1)
        self.book.apply_interest(1)
        self.assertEqual(self.book.balance("carol"), 10**17 - 1 + 9_999_999_999_999)

    def test_zero_rate_pays_nothing(self):
        self.assertEqual(self.book.apply_interest(0), 0)
        self.assertEqual(self.book.balance("alice"), 10_000)

    def test_invalid_rates(self):
        for bad in (-1, 1.5, True, "5", None):
            with self.assertRaises(ValueError):
                self.book.apply_interest(bad)
        self.assertEqual(self.book.balance("alice"), 10_000)


if __name__ == "__main__":
    unittest.main()
