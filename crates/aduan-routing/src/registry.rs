//! The OPD registry (`config/opd.toml`): the agencies tickets go to, and the categories
//! that route them. Loaded and checked by the binary (`crates/aduan/src/opd.rs`).

use std::collections::BTreeSet;

use aduan_core::Budget;
use serde::Deserialize;

/// Where a category's tickets go when it names no OPD itself.
pub const ROUTE_TO_KECAMATAN: &str = "kecamatan";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpdFile {
    #[serde(default)]
    pub opd: Vec<Opd>,
    #[serde(default)]
    pub category: Vec<Category>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opd {
    /// Unique, used in the API (`"opd": "DPU"`).
    pub code: String,
    pub name: String,
    /// Officials who receive routed tickets and warnings by email.
    #[serde(default)]
    pub emails: Vec<String>,
    /// The head of the OPD, who receives escalations (with the admins).
    #[serde(default)]
    pub head_email: Option<String>,
    /// Words and phrases that route a complaint here.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// For a kecamatan office: the kecamatan it serves (a gazetteer name).
    #[serde(default)]
    pub kecamatan: Option<String>,
    /// Deadlines for this OPD's tickets when their category sets none (`"24h"`, `"5d"`).
    #[serde(default)]
    pub first_response: Option<String>,
    #[serde(default)]
    pub resolution: Option<String>,
}

/// A kind of complaint; also an Open311 service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Unique, the Open311 `service_code`.
    pub code: String,
    pub name: String,
    /// The OPD code, or `"kecamatan"`: the office of the kecamatan the complaint is in.
    pub opd: String,
    /// The LAPOR!-style sector, for statistics.
    #[serde(default)]
    pub sector: Option<String>,
    pub keywords: Vec<String>,
    #[serde(default)]
    pub first_response: Option<String>,
    #[serde(default)]
    pub resolution: Option<String>,
}

impl OpdFile {
    /// A one-line description for `check-config`.
    pub fn summary(&self) -> String {
        let keywords: usize = self.opd.iter().map(|o| o.keywords.len()).sum::<usize>()
            + self.category.iter().map(|c| c.keywords.len()).sum::<usize>();
        let emails: usize = self.opd.iter().map(|o| o.emails.len()).sum();
        let offices = self.opd.iter().filter(|o| o.kecamatan.is_some()).count();
        format!(
            "{} OPDs ({offices} kecamatan offices), {} categories, {emails} official addresses, \
             {keywords} routing keywords",
            self.opd.len(),
            self.category.len()
        )
    }

    pub fn codes(&self) -> BTreeSet<String> {
        self.opd.iter().map(|o| o.code.clone()).collect()
    }

    pub fn opd(&self, code: &str) -> Option<&Opd> {
        self.opd.iter().find(|o| o.code == code)
    }

    pub fn category(&self, code: &str) -> Option<&Category> {
        self.category.iter().find(|c| c.code == code)
    }

    /// The office of a kecamatan (by gazetteer name, any case).
    pub fn kecamatan_office(&self, kecamatan: &str) -> Option<&Opd> {
        self.opd
            .iter()
            .find(|o| o.kecamatan.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(kecamatan)))
    }

    /// The deadlines of a ticket of `category` at `opd`: the category's, else the OPD's.
    /// `None` where neither sets one (the `[sla]` defaults apply).
    pub fn budgets(
        &self,
        opd: Option<&str>,
        category: Option<&str>,
    ) -> (Option<Budget>, Option<Budget>) {
        let cat = category.and_then(|c| self.category(c));
        let o = opd.and_then(|o| self.opd(o));
        let pick =
            |c: Option<&String>, o: Option<&String>| c.or(o).and_then(|s| s.parse::<Budget>().ok());
        (
            pick(
                cat.and_then(|c| c.first_response.as_ref()),
                o.and_then(|o| o.first_response.as_ref()),
            ),
            pick(cat.and_then(|c| c.resolution.as_ref()), o.and_then(|o| o.resolution.as_ref())),
        )
    }
}
