//! The fund-pool ledger (防贫救助资金池) in double entry. Each county and policy
//! year is one ledger; each posting moves an amount from one account to another
//! of the same ledger, so the sum of debits equals the sum of credits by
//! construction, and `Balances::check` proves it on every read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::money::{Fen, MAX_AMOUNT};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    /// 资金池: the money available for relief (an asset, debit-normal).
    FundPool,
    /// Premiums the county paid in (保费收入, credit-normal).
    PremiumIncome,
    /// County finance top-ups (县级财政补齐, credit-normal).
    CountyTopUp,
    /// Relief paid to households after filing (防贫救助金, debit-normal).
    ReliefPaid,
    /// Emergency advances paid before recognition (先行救助, debit-normal).
    EmergencyAdvances,
    /// Last year's surplus carried in (上年结转, credit-normal).
    RolloverIn,
    /// This year's surplus carried to the next year (结转下年, debit-normal).
    RolloverOut,
    /// The insurer's service fee for the year (保险公司服务费, debit-normal).
    ServiceFee,
}

impl Account {
    pub const ALL: [Account; 8] = [
        Account::FundPool,
        Account::PremiumIncome,
        Account::CountyTopUp,
        Account::ReliefPaid,
        Account::EmergencyAdvances,
        Account::RolloverIn,
        Account::RolloverOut,
        Account::ServiceFee,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Account::FundPool => "fund_pool",
            Account::PremiumIncome => "premium_income",
            Account::CountyTopUp => "county_top_up",
            Account::ReliefPaid => "relief_paid",
            Account::EmergencyAdvances => "emergency_advances",
            Account::RolloverIn => "rollover_in",
            Account::RolloverOut => "rollover_out",
            Account::ServiceFee => "service_fee",
        }
    }

    pub fn parse(text: &str) -> Option<Account> {
        Account::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// Whether the account's balance is read as debits minus credits.
    pub fn is_debit_normal(self) -> bool {
        matches!(
            self,
            Account::FundPool
                | Account::ReliefPaid
                | Account::EmergencyAdvances
                | Account::RolloverOut
                | Account::ServiceFee
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostingKind {
    PremiumReceived,
    ReliefPayout,
    EmergencyAdvance,
    TopUpReceived,
    ServiceFee,
    RolloverOut,
    RolloverIn,
}

impl PostingKind {
    pub const ALL: [PostingKind; 7] = [
        PostingKind::PremiumReceived,
        PostingKind::ReliefPayout,
        PostingKind::EmergencyAdvance,
        PostingKind::TopUpReceived,
        PostingKind::ServiceFee,
        PostingKind::RolloverOut,
        PostingKind::RolloverIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PostingKind::PremiumReceived => "premium_received",
            PostingKind::ReliefPayout => "relief_payout",
            PostingKind::EmergencyAdvance => "emergency_advance",
            PostingKind::TopUpReceived => "top_up_received",
            PostingKind::ServiceFee => "service_fee",
            PostingKind::RolloverOut => "rollover_out",
            PostingKind::RolloverIn => "rollover_in",
        }
    }

    pub fn parse(text: &str) -> Option<PostingKind> {
        PostingKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// (debit, credit): the only place the chart of postings is written down.
    pub fn accounts(self) -> (Account, Account) {
        match self {
            PostingKind::PremiumReceived => (Account::FundPool, Account::PremiumIncome),
            PostingKind::TopUpReceived => (Account::FundPool, Account::CountyTopUp),
            PostingKind::ReliefPayout => (Account::ReliefPaid, Account::FundPool),
            PostingKind::EmergencyAdvance => (Account::EmergencyAdvances, Account::FundPool),
            PostingKind::ServiceFee => (Account::ServiceFee, Account::FundPool),
            PostingKind::RolloverOut => (Account::RolloverOut, Account::FundPool),
            PostingKind::RolloverIn => (Account::FundPool, Account::RolloverIn),
        }
    }
}

/// One balanced transfer between two accounts of a ledger. A reversal moves
/// the amount back (debit and credit swapped); entries are never changed, so
/// a mistake is undone by a reversal that names the entry it reverses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posting {
    pub kind: PostingKind,
    pub debit: Account,
    pub credit: Account,
    pub amount: Fen,
    pub reversal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a posting amount must be positive and within the amount limit, got {0}")]
    BadAmount(Fen),
    #[error("ledger out of balance: debits {debits} != credits {credits}")]
    Unbalanced { debits: Fen, credits: Fen },
    #[error("a {kind} posting must debit {expected_debit} and credit {expected_credit}")]
    WrongAccounts {
        kind: &'static str,
        expected_debit: &'static str,
        expected_credit: &'static str,
    },
}

impl Posting {
    pub fn new(kind: PostingKind, amount: Fen) -> Result<Posting, LedgerError> {
        if amount <= Fen::ZERO || amount > MAX_AMOUNT {
            return Err(LedgerError::BadAmount(amount));
        }
        let (debit, credit) = kind.accounts();
        debug_assert_ne!(debit, credit);
        Ok(Posting {
            kind,
            debit,
            credit,
            amount,
            reversal: false,
        })
    }

    /// The posting that undoes this one.
    pub fn reversed(&self) -> Posting {
        assert!(
            !self.reversal,
            "a reversal is not reversed again; post the original anew"
        );
        Posting {
            debit: self.credit,
            credit: self.debit,
            reversal: true,
            ..*self
        }
    }

    /// The posting that undoes `amount` of this one: a recovery of part of
    /// an emergency advance (the excess over the relief) moves that much
    /// back, and names the advance it reverses in part.
    ///
    /// # Errors
    ///
    /// [`LedgerError::BadAmount`] unless `0 < amount <= self.amount`.
    pub fn partly_reversed(&self, amount: Fen) -> Result<Posting, LedgerError> {
        if amount <= Fen::ZERO || amount > self.amount {
            return Err(LedgerError::BadAmount(amount));
        }
        Ok(Posting {
            amount,
            ..self.reversed()
        })
    }

    /// Re-checks a posting read back from storage against the chart.
    pub fn verify(&self) -> Result<(), LedgerError> {
        let (debit, credit) = if self.reversal {
            let (d, c) = self.kind.accounts();
            (c, d)
        } else {
            self.kind.accounts()
        };
        if (self.debit, self.credit) != (debit, credit) {
            return Err(LedgerError::WrongAccounts {
                kind: self.kind.as_str(),
                expected_debit: debit.as_str(),
                expected_credit: credit.as_str(),
            });
        }
        if self.amount <= Fen::ZERO || self.amount > MAX_AMOUNT {
            return Err(LedgerError::BadAmount(self.amount));
        }
        Ok(())
    }
}

/// Debit and credit totals per account of one ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Balances {
    totals: BTreeMap<Account, (Fen, Fen)>,
}

impl Balances {
    pub fn from_postings<'a>(
        postings: impl IntoIterator<Item = &'a Posting>,
    ) -> Result<Balances, LedgerError> {
        let mut balances = Balances::default();
        for posting in postings {
            posting.verify()?;
            balances.apply(posting);
        }
        balances.check()?;
        Ok(balances)
    }

    /// Builds balances from per-account totals, as storage aggregates them.
    pub fn from_totals(
        totals: impl IntoIterator<Item = (Account, Fen, Fen)>,
    ) -> Result<Balances, LedgerError> {
        let mut balances = Balances::default();
        for (account, debits, credits) in totals {
            balances.totals.insert(account, (debits, credits));
        }
        balances.check()?;
        Ok(balances)
    }

    pub fn apply(&mut self, posting: &Posting) {
        let add = |a: Fen, b: Fen| {
            a.checked_add(b)
                .expect("bounded amounts never overflow a year's totals")
        };
        let debit = self.totals.entry(posting.debit).or_default();
        debit.0 = add(debit.0, posting.amount);
        let credit = self.totals.entry(posting.credit).or_default();
        credit.1 = add(credit.1, posting.amount);
    }

    /// Sum of debits equals sum of credits over the whole ledger.
    pub fn check(&self) -> Result<(), LedgerError> {
        let debits: Fen = self.totals.values().map(|t| t.0).sum();
        let credits: Fen = self.totals.values().map(|t| t.1).sum();
        if debits != credits {
            return Err(LedgerError::Unbalanced { debits, credits });
        }
        Ok(())
    }

    pub fn debits(&self, account: Account) -> Fen {
        self.totals.get(&account).map_or(Fen::ZERO, |t| t.0)
    }

    pub fn credits(&self, account: Account) -> Fen {
        self.totals.get(&account).map_or(Fen::ZERO, |t| t.1)
    }

    /// The balance on the account's normal side.
    pub fn balance(&self, account: Account) -> Fen {
        let (d, c) = (self.debits(account), self.credits(account));
        let net = if account.is_debit_normal() {
            d.checked_sub(c)
        } else {
            c.checked_sub(d)
        };
        net.expect("bounded totals never overflow")
    }

    pub fn pool(&self) -> Fen {
        self.balance(Account::FundPool)
    }
}

/// How much county finance must add for the pool to stand at zero again.
pub fn shortfall(pool_balance: Fen) -> Fen {
    if pool_balance.is_negative() {
        Fen::new(-pool_balance.get())
    } else {
        Fen::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chart_of_postings() {
        let premium =
            Posting::new(PostingKind::PremiumReceived, Fen::from_yuan(100)).expect("valid");
        let payout = Posting::new(PostingKind::ReliefPayout, Fen::from_yuan(150)).expect("valid");
        let b = Balances::from_postings([&premium, &payout]).expect("balanced");
        assert_eq!(b.pool(), Fen::from_yuan(-50));
        assert_eq!(shortfall(b.pool()), Fen::from_yuan(50));
        assert_eq!(b.balance(Account::PremiumIncome), Fen::from_yuan(100));
        assert_eq!(b.balance(Account::ReliefPaid), Fen::from_yuan(150));
    }

    #[test]
    fn a_partial_reversal_moves_part_of_it_back() {
        let advance =
            Posting::new(PostingKind::EmergencyAdvance, Fen::new(500_000)).expect("valid");
        let recovery = advance
            .partly_reversed(Fen::new(200_000))
            .expect("within the advance");
        assert_eq!(
            (recovery.debit, recovery.credit),
            (advance.credit, advance.debit)
        );
        assert!(recovery.reversal && recovery.verify().is_ok());
        assert!(advance.partly_reversed(Fen::new(500_001)).is_err());
        assert!(advance.partly_reversed(Fen::ZERO).is_err());
    }

    #[test]
    fn a_reversal_undoes_its_posting() {
        let fee = Posting::new(PostingKind::ServiceFee, Fen::from_yuan(10)).expect("valid");
        let undo = fee.reversed();
        assert_eq!(
            (undo.debit, undo.credit),
            (Account::FundPool, Account::ServiceFee)
        );
        assert_eq!(undo.verify(), Ok(()));
        let b = Balances::from_postings([&fee, &undo]).expect("balanced");
        assert_eq!(
            (b.pool(), b.balance(Account::ServiceFee)),
            (Fen::ZERO, Fen::ZERO)
        );
        let mut forged = undo;
        forged.reversal = false;
        assert!(
            forged.verify().is_err(),
            "swapped accounts need the reversal mark"
        );
    }

    #[test]
    fn refuses_bad_amounts_and_accounts() {
        assert!(Posting::new(PostingKind::TopUpReceived, Fen::ZERO).is_err());
        assert!(Posting::new(PostingKind::TopUpReceived, Fen::new(-1)).is_err());
        let mut p = Posting::new(PostingKind::TopUpReceived, Fen::new(1)).expect("valid");
        p.credit = Account::ReliefPaid;
        assert!(p.verify().is_err());
        let unbalanced = Balances::from_totals([(Account::FundPool, Fen::new(5), Fen::ZERO)]);
        assert!(matches!(unbalanced, Err(LedgerError::Unbalanced { .. })));
    }

    proptest! {
        #[test]
        fn every_sequence_of_postings_balances(
            ops in proptest::collection::vec((0usize..7, 1i64..=MAX_AMOUNT.get() / 1000, proptest::bool::ANY), 0..200)
        ) {
            let postings: Vec<Posting> = ops
                .into_iter()
                .flat_map(|(k, amount, reverse)| {
                    let p = Posting::new(PostingKind::ALL[k], Fen::new(amount)).expect("valid");
                    if reverse { vec![p, p.reversed()] } else { vec![p] }
                })
                .collect();
            let b = Balances::from_postings(&postings).expect("always balanced");
            let total_debits: Fen = Account::ALL.iter().map(|&a| b.debits(a)).sum();
            let total_credits: Fen = Account::ALL.iter().map(|&a| b.credits(a)).sum();
            prop_assert_eq!(total_debits, total_credits);
            // The pool is what came in less what went out.
            let sum = |accounts: &[Account]| accounts.iter().map(|&a| b.balance(a)).sum::<Fen>();
            let inflow = sum(&[Account::PremiumIncome, Account::CountyTopUp, Account::RolloverIn]);
            let outflow = sum(&[Account::ReliefPaid, Account::EmergencyAdvances, Account::RolloverOut, Account::ServiceFee]);
            prop_assert_eq!(b.pool(), inflow.checked_sub(outflow).expect("fits"));
        }
    }
}
