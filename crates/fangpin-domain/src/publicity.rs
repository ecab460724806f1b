//! Village publicity (乡村评议公示): the proposed relief is posted for a number of
//! calendar days; anyone may object while it is up.

use chrono::{Days, NaiveDate};

/// A publicity period. Day one is the day it opens; objections are accepted
/// through `last_objection_day` inclusive, and the period has passed from the
/// day after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicityPeriod {
    pub opens_on: NaiveDate,
    pub last_objection_day: NaiveDate,
}

impl PublicityPeriod {
    /// Opens a period of `days` calendar days (10 in Hebi). `days` is validated
    /// by the policy to be at least one.
    pub fn open(opens_on: NaiveDate, days: u32) -> PublicityPeriod {
        assert!(days >= 1, "a publicity period lasts at least one day");
        let last_objection_day = opens_on
            .checked_add_days(Days::new(u64::from(days - 1)))
            .expect("publicity end within chrono's date range");
        PublicityPeriod {
            opens_on,
            last_objection_day,
        }
    }

    pub fn accepts_objection(&self, today: NaiveDate) -> bool {
        self.opens_on <= today && today <= self.last_objection_day
    }

    pub fn has_ended(&self, today: NaiveDate) -> bool {
        today > self.last_objection_day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn ten_days_include_the_first() {
        let p = PublicityPeriod::open(d(2024, 3, 1), 10);
        assert_eq!(p.last_objection_day, d(2024, 3, 10));
        assert!(p.accepts_objection(d(2024, 3, 1)));
        assert!(p.accepts_objection(d(2024, 3, 10)));
        assert!(!p.accepts_objection(d(2024, 3, 11)));
        assert!(!p.has_ended(d(2024, 3, 10)));
        assert!(p.has_ended(d(2024, 3, 11)));
    }
}

/// What became of an objection (异议处理结果), read from the claim's history
/// after it was raised: the objection sends the claim back to survey, and the
/// first decision after that answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectionOutcome {
    /// Not answered yet: the claim is being surveyed again.
    Pending,
    /// 异议成立: the survey then recommended no relief, or the county
    /// disqualified the household.
    Upheld,
    /// 异议不成立: the claim passed a later publicity.
    NotUpheld,
}

impl ObjectionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectionOutcome::Pending => "pending",
            ObjectionOutcome::Upheld => "upheld",
            ObjectionOutcome::NotUpheld => "not_upheld",
        }
    }
}

/// The outcome of each objection of a claim from its history (the events
/// in order): the n-th `raise_objection` is the n-th objection, and the
/// first decision after it answers it.
pub fn objection_outcomes(events: &[&str]) -> Vec<ObjectionOutcome> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| **e == "raise_objection")
        .map(|(i, _)| {
            events[i + 1..]
                .iter()
                .find_map(|e| match *e {
                    "recommend_rejection" | "disqualify_on_cross_check" => {
                        Some(ObjectionOutcome::Upheld)
                    }
                    "pass_publicity" => Some(ObjectionOutcome::NotUpheld),
                    _ => None,
                })
                .unwrap_or(ObjectionOutcome::Pending)
        })
        .collect()
}

#[cfg(test)]
mod objection_tests {
    use super::*;

    #[test]
    fn the_first_decision_after_each_objection_answers_it() {
        use ObjectionOutcome::*;
        let open = ["recommend_approval", "open_publicity"];
        let mut events = vec!["submit", "assign_survey"];
        events.extend(open);
        assert!(objection_outcomes(&events).is_empty());
        events.push("raise_objection");
        assert_eq!(objection_outcomes(&events), [Pending]);
        // Surveyed again and posted again: a second objection, then passed.
        events.extend(open);
        events.push("raise_objection");
        events.extend(open);
        events.push("pass_publicity");
        assert_eq!(objection_outcomes(&events), [NotUpheld, NotUpheld]);
        let upheld = ["open_publicity", "raise_objection", "recommend_rejection"];
        assert_eq!(objection_outcomes(&upheld), [Upheld]);
    }
}

/// The county office that answers for a notice (县防贫办): its name, address
/// and phone, printed on every notice so villagers know where to object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountyOffice {
    pub name: String,
    pub address: String,
    pub phone: String,
}

/// The longest office name, address or phone accepted, in characters: they
/// are printed in one line of the notice.
pub const MAX_OFFICE_FIELD_CHARS: usize = 60;

/// One household on the notice board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeEntry {
    pub head_name: String,
    /// Only ever the masked form (first 6 and last 4 characters).
    pub id_number_masked: String,
    pub relief_kind: crate::policy::ReliefKind,
    pub amount: crate::Fen,
    pub period: PublicityPeriod,
}

/// The most households one printed notice lists: a large administrative
/// village relieves a few dozen a year, so more is a mistake.
pub const MAX_NOTICE_ENTRIES: usize = 2_000;

/// The text of a printed village notice (公示), laid out by whoever prints
/// it: every word and figure is decided here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintedNotice {
    pub title: String,
    /// Lines under the title: who posts it and about what.
    pub preamble: Vec<String>,
    pub columns: [&'static str; 6],
    pub rows: Vec<[String; 6]>,
    /// How and until when to object, and where.
    pub closing: Vec<String>,
    /// The signature block, right-aligned: the office and the date.
    pub signature: [String; 2],
}

fn chinese_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// What the notice of a village says on `printed_on`: the households in
/// publicity, each with its relief and the last day objections are taken,
/// the window as a whole, and how to object (to the village committee, the
/// township or the county office, whose address and phone are printed).
/// Entries come sorted by the caller; IDs are masked before they get here.
pub fn printed_notice(
    county_name: &str,
    village_code: &str,
    office: &CountyOffice,
    entries: &[NoticeEntry],
    printed_on: NaiveDate,
) -> PrintedNotice {
    assert!(entries.len() <= MAX_NOTICE_ENTRIES, "bounded by the caller");
    let first = entries.iter().map(|e| e.period.opens_on).min();
    let last = entries.iter().map(|e| e.period.last_objection_day).max();
    let mut preamble = vec![format!("{county_name}　村（社区）代码 {village_code}")];
    preamble.push(match (first, last) {
        (Some(first), Some(last)) => format!(
            "经入户调查、评议审核，拟对以下{}户给予防贫救助，现予公示。公示期：{}至{}。",
            entries.len(),
            chinese_date(first),
            chinese_date(last)
        ),
        _ => "本村目前没有正在公示的防贫救助。".to_string(),
    });
    let rows = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            [
                (i + 1).to_string(),
                e.head_name.clone(),
                e.id_number_masked.clone(),
                e.relief_kind.chinese().to_string(),
                e.amount.to_string(),
                chinese_date(e.period.last_objection_day),
            ]
        })
        .collect();
    let mut closing = Vec::new();
    if let Some(last) = last {
        closing.push(format!(
            "公示期间，任何单位和个人如有异议，请于{}前（含当日）以书面、电话或当面方式，\
             向村民委员会、乡镇人民政府或{}反映。反映情况请实事求是，\
             并留下真实姓名和联系方式，我们将依法保护反映人。",
            chinese_date(last),
            office.name
        ));
    }
    closing.push(format!(
        "{}　地址：{}　电话：{}",
        office.name, office.address, office.phone
    ));
    PrintedNotice {
        title: "防贫救助公示".to_string(),
        preamble,
        columns: [
            "序号",
            "户主姓名",
            "身份证号",
            "救助类别",
            "救助金额（元）",
            "异议截止",
        ],
        rows,
        closing,
        signature: [office.name.clone(), chinese_date(printed_on)],
    }
}

#[cfg(test)]
mod notice_tests {
    use super::*;
    use crate::Fen;
    use crate::policy::ReliefKind;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, m, day).expect("valid date")
    }

    fn office() -> CountyOffice {
        CountyOffice {
            name: "涉县防贫工作领导小组办公室".into(),
            address: "涉县振兴路8号".into(),
            phone: "0310-3812345".into(),
        }
    }

    #[test]
    fn the_notice_states_each_household_the_window_and_where_to_object() {
        let entries = [
            NoticeEntry {
                head_name: "张三".into(),
                id_number_masked: "130426********0011".into(),
                relief_kind: ReliefKind::Illness,
                amount: Fen::new(180_000),
                period: PublicityPeriod::open(d(3, 1), 10),
            },
            NoticeEntry {
                head_name: "李四".into(),
                id_number_masked: "130426********0027".into(),
                relief_kind: ReliefKind::Schooling,
                amount: Fen::new(123_456),
                period: PublicityPeriod::open(d(3, 4), 10),
            },
        ];
        let n = printed_notice("涉县", "130426100201", &office(), &entries, d(3, 4));
        assert_eq!(n.title, "防贫救助公示");
        assert!(n.preamble[1].contains("以下2户"), "{}", n.preamble[1]);
        assert!(
            n.preamble[1].contains("2024年3月1日至2024年3月13日"),
            "{}",
            n.preamble[1]
        );
        assert_eq!(
            n.rows[1],
            [
                "2",
                "李四",
                "130426********0027",
                "因学",
                "1234.56",
                "2024年3月13日"
            ]
            .map(String::from)
        );
        assert!(n.closing[0].contains("2024年3月13日前"));
        assert!(n.closing[1].contains("0310-3812345") && n.closing[1].contains("振兴路8号"));
        assert_eq!(n.signature[1], "2024年3月4日");
    }

    #[test]
    fn an_empty_board_says_so() {
        let n = printed_notice("涉县", "130426100201", &office(), &[], d(3, 4));
        assert!(n.rows.is_empty());
        assert!(n.preamble[1].contains("没有"));
        assert_eq!(n.closing.len(), 1, "no window to object in");
    }
}
