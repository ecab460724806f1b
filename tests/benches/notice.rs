//! Benchmark: the printed notice (公示) of a village with 200 households in
//! publicity, laid out and written as a PDF by the server's own renderer
//! (`notice_pdf::render`, the font subset included), in Debian's WenQuanYi
//! Micro Hei. Its anchor, from the same run on the same file, is poppler's
//! `pdftotext` reading the PDF back: a C reader of what we wrote.
//!
//! ```text
//! cargo bench -p fangpin-tests --bench notice [-- --households N --runs N]
//! ```
//!
//! Needs fonts-wqy-microhei and poppler-utils (apt); without them it says so
//! and stops.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use fangpin_domain::Fen;
use fangpin_domain::policy::ReliefKind;
use fangpin_domain::publicity::{CountyOffice, NoticeEntry, PublicityPeriod, printed_notice};
use fangpin_server::services::notice_pdf::{self, NoticeFont};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Household heads' names from common surnames and given-name characters,
/// so the subset holds a realistic few hundred glyphs.
fn name(i: usize) -> String {
    const SURNAMES: &str = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段漕钱汤尹黎易常武乔贺赖龚文";
    const GIVEN: &str = "秀英华玉兰桂芳珍凤敏丽红霞梅建国军平明强伟刚勇杰涛斌辉磊洪波鹏飞志宏海峰林庆文武春燕云龙生福德永长学忠";
    let s: Vec<char> = SURNAMES.chars().collect();
    let g: Vec<char> = GIVEN.chars().collect();
    let mut out = String::new();
    out.push(s[i % s.len()]);
    out.push(g[(i * 7) % g.len()]);
    if !i.is_multiple_of(3) {
        out.push(g[(i * 13 + 5) % g.len()]);
    }
    out
}

fn main() {
    let households = arg("--households", 200);
    let runs = arg("--runs", 20).max(1);
    let font_path = std::path::Path::new(notice_pdf::DEBIAN_CJK_FONT);
    if !font_path.is_file() {
        eprintln!("no {}: apt install fonts-wqy-microhei", font_path.display());
        return;
    }
    let font = NoticeFont::load(font_path).expect("the font loads");
    let kinds = [
        ReliefKind::Illness,
        ReliefKind::Schooling,
        ReliefKind::Accident,
        ReliefKind::Industry,
    ];
    let opens = NaiveDate::from_ymd_opt(2024, 3, 1).expect("date");
    let entries: Vec<NoticeEntry> = (0..households)
        .map(|i| NoticeEntry {
            head_name: name(i),
            id_number_masked: format!("130426********{:04}", 1000 + i),
            relief_kind: kinds[i % kinds.len()],
            amount: Fen::new(100_000 + 1_337 * i as i64),
            period: PublicityPeriod::open(opens, 10),
        })
        .collect();
    let office = CountyOffice {
        name: "涉县防贫工作领导小组办公室".into(),
        address: "涉县振兴路8号".into(),
        phone: "0310-3812345".into(),
    };
    let notice = printed_notice("涉县", "130426100201", &office, &entries, opens);
    let missing = font.missing(&notice_pdf::all_text(&notice));
    assert!(missing.is_empty(), "the font lacks {missing:?}");

    let mut times = Vec::with_capacity(runs);
    let mut pdf = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        pdf = notice_pdf::render(&notice, &font).expect("rendered");
        times.push(started.elapsed());
    }
    let render = median(times);
    let dir = tempfile::tempdir().expect("a folder");
    let path = dir.path().join("notice.pdf");
    std::fs::write(&path, &pdf).expect("write");

    let mut reads = Vec::with_capacity(runs);
    let mut pages = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let out = std::process::Command::new("pdftotext")
            .args(["-layout", "-enc", "UTF-8"])
            .arg(&path)
            .arg("-")
            .output();
        let Ok(out) = out else {
            eprintln!("no pdftotext: apt install poppler-utils");
            return;
        };
        reads.push(started.elapsed());
        assert!(out.status.success(), "pdftotext failed");
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        pages = text.matches('\u{c}').count();
        assert!(
            text.contains(&entries[households - 1].head_name),
            "the last household is printed"
        );
    }
    let read = median(reads);
    println!("notice of {households} households, median of {runs} runs:");
    println!(
        "  fangpin render        {:>8.1} ms   {:>7} bytes   {pages} pages",
        render.as_secs_f64() * 1e3,
        pdf.len()
    );
    println!(
        "  anchor: pdftotext     {:>8.1} ms   (reads the same file back)",
        read.as_secs_f64() * 1e3
    );
    println!(
        "  ratio render / pdftotext: {:.2}",
        render.as_secs_f64() / read.as_secs_f64()
    );
}
