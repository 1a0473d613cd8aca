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


if __name__ == "__main__":
    unittest.main()
