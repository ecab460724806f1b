//! A policy year of a county's fund (资金池年度): its totals, the identity a
//! finance bureau reconciles, and the plan for closing it.
//!
//! opening + premiums + top-ups − relief − advances − service fee = closing,
//! and the closing balance of year Y is the opening balance of year Y+1.

use rust_decimal::Decimal;

use crate::ledger::{Account, Balances, LedgerError, shortfall};
use crate::money::Fen;

/// What the ledger of one county and year says, account by account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YearTotals {
    /// Carried in from the previous year (上年结转).
    pub opening: Fen,
    pub premiums: Fen,
    pub top_ups: Fen,
    pub relief: Fen,
    pub advances: Fen,
    pub service_fee: Fen,
    /// Carried out to the next year at close.
    pub rolled_over: Fen,
    /// The posted pool balance.
    pub pool: Fen,
    /// Filed relief reserved but not yet paid.
    pub pending: Fen,
}

impl YearTotals {
    pub fn new(balances: &Balances, pending: Fen) -> YearTotals {
        YearTotals {
            opening: balances.balance(Account::RolloverIn),
            premiums: balances.balance(Account::PremiumIncome),
            top_ups: balances.balance(Account::CountyTopUp),
            relief: balances.balance(Account::ReliefPaid),
            advances: balances.balance(Account::EmergencyAdvances),
            service_fee: balances.balance(Account::ServiceFee),
            rolled_over: balances.balance(Account::RolloverOut),
            pool: balances.pool(),
            pending,
        }
    }

    /// The balance at the end of the year, before it is carried over.
    pub fn closing(&self) -> Fen {
        [self.opening, self.premiums, self.top_ups]
            .into_iter()
            .sum::<Fen>()
            .checked_sub(
                [self.relief, self.advances, self.service_fee]
                    .into_iter()
                    .sum(),
            )
            .expect("bounded totals")
    }

    /// What can still be promised: posted balance less reservations.
    pub fn available(&self) -> Fen {
        self.pool.checked_sub(self.pending).expect("bounded totals")
    }

    /// The reconciliation identity: the closing balance is what the pool holds
    /// plus what was carried out of it.
    pub fn check(&self) -> Result<(), LedgerError> {
        let held = self
            .pool
            .checked_add(self.rolled_over)
            .expect("bounded totals");
        if self.closing() != held {
            return Err(LedgerError::Unbalanced {
                debits: self.closing(),
                credits: held,
            });
        }
        Ok(())
    }

    /// How much county finance must add so that every reserved relief is covered.
    pub fn shortfall(&self) -> Fen {
        shortfall(self.available())
    }
}

/// The insurer's fee: the policy's rate times the year's total relief (relief
/// paid plus emergency advances), rounded half away from zero to the fen.
pub fn service_fee(rate: Decimal, relief_total: Fen) -> Fen {
    Fen::round_from_decimal_fen(relief_total.to_decimal_fen() * rate)
        .expect("fee of a bounded total fits")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosePlan {
    pub service_fee: Fen,
    /// The surplus carried into next year's opening balance; zero carries nothing.
    pub rollover: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    #[error(
        "{count} reservation(s) of filed relief ({amount} yuan) are still pending: pay or void them first"
    )]
    PendingReservations { count: u64, amount: Fen },
    #[error("{count} top-up flag(s) are open: county finance must top up the pool first")]
    TopUpFlagsOpen { count: u64 },
    #[error(
        "the pool ({pool} yuan) cannot cover the service fee of {fee} yuan: top up {shortfall} yuan first"
    )]
    CannotCoverFee { pool: Fen, fee: Fen, shortfall: Fen },
}

/// Decides the close of an open year: the fee to post and the surplus to carry.
pub fn plan_close(
    totals: &YearTotals,
    pending_reservations: u64,
    open_flags: u64,
    service_fee_rate: Decimal,
) -> Result<ClosePlan, CloseError> {
    if pending_reservations > 0 || totals.pending > Fen::ZERO {
        return Err(CloseError::PendingReservations {
            count: pending_reservations,
            amount: totals.pending,
        });
    }
    if open_flags > 0 {
        return Err(CloseError::TopUpFlagsOpen { count: open_flags });
    }
    let relief_total = totals
        .relief
        .checked_add(totals.advances)
        .expect("bounded totals");
    let fee = service_fee(service_fee_rate, relief_total)
        .checked_sub(totals.service_fee)
        .expect("bounded totals")
        .max(Fen::ZERO);
    let after_fee = totals.pool.checked_sub(fee).expect("bounded totals");
    if after_fee.is_negative() {
        return Err(CloseError::CannotCoverFee {
            pool: totals.pool,
            fee,
            shortfall: shortfall(after_fee),
        });
    }
    Ok(ClosePlan {
        service_fee: fee,
        rollover: after_fee,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Posting, PostingKind};
    use proptest::prelude::*;

    fn post(kind: PostingKind, yuan: i64) -> Posting {
        Posting::new(kind, Fen::from_yuan(yuan)).expect("valid")
    }

    #[test]
    fn a_year_closes_with_fee_and_rollover() {
        let postings = [
            post(PostingKind::RolloverIn, 1_000),
            post(PostingKind::PremiumReceived, 100_000),
            post(PostingKind::ReliefPayout, 60_000),
            post(PostingKind::EmergencyAdvance, 2_000),
        ];
        let totals = YearTotals::new(
            &Balances::from_postings(&postings).expect("balanced"),
            Fen::ZERO,
        );
        assert_eq!(totals.closing(), Fen::from_yuan(39_000));
        totals.check().expect("ties");
        // 15% of 62,000 = 9,300; 39,000 - 9,300 = 29,700 carried over.
        let plan = plan_close(&totals, 0, 0, Decimal::new(15, 2)).expect("closes");
        assert_eq!(
            plan,
            ClosePlan {
                service_fee: Fen::from_yuan(9_300),
                rollover: Fen::from_yuan(29_700)
            }
        );

        let mut closed: Vec<Posting> = postings.to_vec();
        closed.push(post(PostingKind::ServiceFee, 9_300));
        closed.push(post(PostingKind::RolloverOut, 29_700));
        let after = YearTotals::new(
            &Balances::from_postings(&closed).expect("balanced"),
            Fen::ZERO,
        );
        after.check().expect("ties after close");
        assert_eq!(
            (after.pool, after.closing(), after.rolled_over),
            (Fen::ZERO, Fen::from_yuan(29_700), Fen::from_yuan(29_700))
        );
    }

    #[test]
    fn close_is_refused_while_anything_is_open() {
        let postings = [
            post(PostingKind::PremiumReceived, 100),
            post(PostingKind::ReliefPayout, 95),
        ];
        let b = Balances::from_postings(&postings).expect("balanced");
        let rate = Decimal::new(15, 2);
        let pending = YearTotals::new(&b, Fen::from_yuan(1));
        assert!(matches!(
            plan_close(&pending, 1, 0, rate),
            Err(CloseError::PendingReservations { .. })
        ));
        let totals = YearTotals::new(&b, Fen::ZERO);
        assert!(matches!(
            plan_close(&totals, 0, 2, rate),
            Err(CloseError::TopUpFlagsOpen { count: 2 })
        ));
        // Fee 14.25 on a pool of 5.00.
        assert_eq!(
            plan_close(&totals, 0, 0, rate),
            Err(CloseError::CannotCoverFee {
                pool: Fen::from_yuan(5),
                fee: Fen::new(1_425),
                shortfall: Fen::new(925)
            })
        );
    }

    #[test]
    fn fee_rounds_half_away_from_zero() {
        assert_eq!(service_fee(Decimal::new(15, 2), Fen::new(3)), Fen::new(0));
        assert_eq!(service_fee(Decimal::new(15, 2), Fen::new(10)), Fen::new(2));
    }

    proptest! {
        #[test]
        fn closing_then_rolling_over_always_ties(
            opening in 0i64..10_000_000, premiums in 0i64..1_000_000_000, top_ups in 0i64..100_000_000,
            relief in 0i64..500_000_000, advances in 0i64..10_000_000, rate_bp in 0u32..3000,
        ) {
            let mut postings = Vec::new();
            for (kind, fen) in [
                (PostingKind::RolloverIn, opening), (PostingKind::PremiumReceived, premiums),
                (PostingKind::TopUpReceived, top_ups), (PostingKind::ReliefPayout, relief),
                (PostingKind::EmergencyAdvance, advances),
            ] {
                if fen > 0 { postings.push(Posting::new(kind, Fen::new(fen)).expect("valid")); }
            }
            let totals = YearTotals::new(&Balances::from_postings(&postings).expect("balanced"), Fen::ZERO);
            prop_assert_eq!(totals.check(), Ok(()));
            match plan_close(&totals, 0, 0, Decimal::new(rate_bp.into(), 4)) {
                Ok(plan) => {
                    if plan.service_fee > Fen::ZERO { postings.push(Posting::new(PostingKind::ServiceFee, plan.service_fee).expect("valid")); }
                    if plan.rollover > Fen::ZERO { postings.push(Posting::new(PostingKind::RolloverOut, plan.rollover).expect("valid")); }
                    let after = YearTotals::new(&Balances::from_postings(&postings).expect("balanced"), Fen::ZERO);
                    prop_assert_eq!(after.check(), Ok(()));
                    prop_assert_eq!(after.pool, Fen::ZERO, "a closed year holds nothing");
                    prop_assert_eq!(after.rolled_over, after.closing(), "closing of Y = opening of Y+1");
                }
                Err(CloseError::CannotCoverFee { pool, fee, shortfall }) => {
                    prop_assert_eq!(pool.checked_add(shortfall), Some(fee));
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}
